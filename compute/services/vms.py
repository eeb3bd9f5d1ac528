"""VM actions (start, stop, reboot, delete) and an operator's resync of one VM."""

from __future__ import annotations

from collections.abc import Callable

from django.db import connections, router, transaction
from django.db.models import JSONField, TextField

import audit
from accounts.choices import ROLE_ORDER, Role, role_at_least
from accounts.models import Membership, Project, TOTPDevice
from accounts.selectors import project_require_role
from compute import dispatch
from compute.choices import ACTION_ALLOWED_FROM, Action, PowerState, VMStatus
from compute.models import Hypervisor, VirtualMachine
from controlplane.errors import Conflict, InvalidInput

from .operations import operation_create
from .writeback import status_after_observation, vm_record_status


def vm_lock_for_action(*, vm: VirtualMachine, action: str, user=None) -> VirtualMachine:
    """Check the role, lock the VM row and check it may start ``action`` now (ACTION_ALLOWED_FROM,
    nothing else in progress, project not suspended for a start). Raises Conflict (409) otherwise.
    Call inside a transaction; returns the locked VM."""
    if action not in ACTION_ALLOWED_FROM:
        raise InvalidInput(f"Unknown action {action!r}.")
    if user is not None:
        project_require_role(user=user, project=vm.project, role=Role.MEMBER)
    vm = (
        VirtualMachine.objects.select_for_update(no_key=True, of=("self",))
        .select_related("project", "hypervisor", "plan")
        .get(pk=vm.pk)
    )
    if vm.task_state:
        raise Conflict(
            f"Cannot {Action(action).label.lower()} {vm.name}: it is busy "
            f"({vm.get_task_state_display().lower()} in progress); wait for it to finish."
        )
    if vm.status not in ACTION_ALLOWED_FROM[action]:
        raise Conflict(f"Cannot {Action(action).label.lower()} {vm.name}: it is {vm.get_status_display().lower()}.")
    if action in (Action.START, Action.REBOOT) and vm.project.is_suspended:
        raise Conflict(
            f"Project {vm.project.name} is suspended: {vm.project.suspended_reason or 'see billing'}.",
            code="project_suspended",
        )
    return vm


def _plain_columns(model, connection) -> list:
    """The fields of ``model`` a raw row gives as Python values with no conversion (no text
    blobs, JSON or encrypted columns): the ones ``vm_take_for_action`` reads back."""
    return [
        field
        for field in model._meta.concrete_fields
        if not isinstance(field, TextField | JSONField) and not field.get_db_converters(connection)
    ]


def vm_take_for_action(*, vm_id: int | None, action: str, user=None) -> VirtualMachine | None:
    """``vm_lock_for_action`` and setting ``task_state`` in one statement, when every check
    passes (issue 25): ``UPDATE … SET task_state WHERE`` the VM is idle, in a status the action
    is allowed from, its project not suspended (start, reboot) and ``user`` (when given) a
    member or better of the project, with 2FA if the project requires it; ``RETURNING`` the
    VM with its project and hypervisor. Locks the VM row as ``vm_lock_for_action`` does (FOR
    NO KEY UPDATE, the project and hypervisor not). Returns None, having changed nothing,
    when any check fails or the database is not PostgreSQL: the caller then runs
    ``vm_lock_for_action``, which raises the error that applies, in its order (404 and 403 of
    the role check, then 409), or passes if the VM changed in between."""
    connection = connections[router.db_for_write(VirtualMachine)]
    if connection.vendor != "postgresql" or vm_id is None or not 0 < vm_id < 2**63:
        return None
    if action not in ACTION_ALLOWED_FROM or (user is not None and not user.is_authenticated):
        return None
    quote = connection.ops.quote_name
    tables = {"vm": VirtualMachine, "p": Project, "h": Hypervisor}
    columns = {alias: _plain_columns(model, connection) for alias, model in tables.items()}
    returning = ", ".join(f"{alias}.{quote(field.column)}" for alias, fields in columns.items() for field in fields)
    allowed = list(ACTION_ALLOWED_FROM[action])
    where = [
        "vm.id = %s",
        "p.id = vm.project_id",
        "h.id = vm.hypervisor_id",
        "(vm.task_state IS NULL OR vm.task_state = '')",
        f"vm.status IN ({', '.join(['%s'] * len(allowed))})",
    ]
    params = [action, vm_id, *allowed]
    if action in (Action.START, Action.REBOOT):
        where.append("p.suspended_at IS NULL")
    if user is not None:
        roles = [role for role in ROLE_ORDER if role_at_least(role, Role.MEMBER)]
        where.append(
            f"EXISTS (SELECT 1 FROM {quote(Membership._meta.db_table)} m WHERE m.project_id = vm.project_id"
            f" AND m.user_id = %s AND m.role IN ({', '.join(['%s'] * len(roles))}))"
        )
        where.append(
            f"(NOT p.require_2fa OR EXISTS (SELECT 1 FROM {quote(TOTPDevice._meta.db_table)} d"
            " WHERE d.user_id = %s AND d.confirmed))"
        )
        params += [user.pk, *roles, user.pk]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(VirtualMachine._meta.db_table)} vm SET task_state = %s"
            f" FROM {quote(Project._meta.db_table)} p, {quote(Hypervisor._meta.db_table)} h"
            f" WHERE {' AND '.join(where)} RETURNING {returning}",
            params,
        )
        row = cursor.fetchone()
    if row is None:
        return None
    values, loaded = iter(row), {}
    for alias, model in tables.items():
        fields = columns[alias]
        loaded[alias] = model.from_db(connection.alias, [f.attname for f in fields], [next(values) for _ in fields])
    vm = loaded["vm"]
    vm.project, vm.hypervisor = loaded["p"], loaded["h"]
    return vm


def vm_operation_start(
    *, vm: VirtualMachine, action: str, user=None, actor=None, request=None, params=None, details=None
):
    """Create the Operation on a VM locked by ``vm_lock_for_action``, set its task_state, audit
    (a VM from ``vm_take_for_action`` has its task_state set already)."""
    operation = operation_create(vm=vm, action=action, requested_by=user, params=params)
    if vm.task_state != action:
        VirtualMachine.objects.filter(pk=vm.pk).update(task_state=action)
    vm.task_state = action
    audit.record(
        actor=user or actor or "system",
        action=f"vm.{action}.requested",
        target=vm,
        project=vm.project,
        details={"operation": operation.pk, **(details or {})},
        request=request,
    )
    return operation


@transaction.atomic
def vm_action(*, vm: VirtualMachine, action: str, user=None, actor=None, request=None, params=None):
    """Start / stop / reboot / delete: check, create the Operation, set task_state.

    ``user`` is the acting person (role checked: member or better); system
    callers (billing suspension) pass ``user=None`` and an ``actor`` name.
    Returns the Operation; its task is published when the transaction commits.
    """
    _check_power_action(action)
    vm = vm_take_for_action(vm_id=vm.pk, action=action, user=user) or vm_lock_for_action(
        vm=vm, action=action, user=user
    )
    return vm_operation_start(vm=vm, action=action, user=user, actor=actor, request=request, params=params)


@transaction.atomic
def vm_action_by_id(*, vm_id: int | None, action: str, user, vm_get: Callable[[], VirtualMachine], request=None):
    """``vm_action`` for an API caller who names the VM by its id, without reading the VM before
    the statement that takes it (``vm_take_for_action``). Only when that takes nothing:
    ``vm_get()`` returns the VM as the caller may see it or raises (the 404), and
    ``vm_lock_for_action`` gives the error (or passes, if the VM changed in between): the
    answers and their order are those of reading the VM, then ``vm_action``."""
    _check_power_action(action)
    vm = vm_take_for_action(vm_id=vm_id, action=action, user=user)
    if vm is None:
        vm = vm_lock_for_action(vm=vm_get(), action=action, user=user)
    return vm_operation_start(vm=vm, action=action, user=user, request=request)


def _check_power_action(action: str) -> None:
    if action not in (Action.START, Action.STOP, Action.REBOOT, Action.DELETE):
        raise InvalidInput(f"Unknown action {action!r}; use start, stop, reboot or delete.")


@transaction.atomic
def vm_resync_request(*, vm: VirtualMachine, actor, request=None) -> None:
    """Ask a worker to read the VM's real state from its hypervisor and write it back
    (operators: "force resync", and resetting a VM stuck in error)."""
    if vm.task_state:
        raise Conflict(f"{vm.name} has an operation in progress; its result will be written back when it ends.")
    if not vm.backend_id and vm.status != VMStatus.ERROR:
        raise Conflict(f"{vm.name} has no id on its hypervisor yet.")
    audit.record(
        actor=actor, action="admin.action", target=vm, project=vm.project, details={"action": "resync"}, request=request
    )
    dispatch.publish_resync(vm_id=vm.pk, queue=vm.hypervisor.queue)


@transaction.atomic
def vm_apply_observation(*, vm_id: int, observed: dict | None, source: str) -> VirtualMachine | None:
    """Write back the hypervisor's answer for one VM (None = confirmed absent).

    Skips a VM with an operation in progress: the operation owns it.
    """
    vm = (
        VirtualMachine.objects.select_for_update(no_key=True, of=("self",))
        .select_related("project", "plan")
        .get(pk=vm_id)
    )
    if vm.task_state or vm.status == VMStatus.DELETED:
        return None
    status = status_after_observation(current=vm.status, observed=observed)
    if observed is None and status == VMStatus.ERROR:
        VirtualMachine.objects.filter(pk=vm.pk).update(power_state=PowerState.MISSING)
    before = vm.status
    vm_record_status(vm=vm, status=status, observed=observed, source=source)
    audit.record(
        actor=source,
        action="drift.detected" if before != status else "admin.action",
        target=vm,
        project=vm.project,
        details={"resync": True, "before": before, "after": status, "observed": observed},
    )
    return vm
