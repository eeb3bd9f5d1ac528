"""VM actions (start, stop, reboot, delete) and an operator's resync of one VM."""

from __future__ import annotations

from django.db import transaction

import audit
from accounts.choices import Role
from accounts.selectors import project_require_role
from compute import dispatch
from compute.choices import ACTION_ALLOWED_FROM, Action, PowerState, VMStatus
from compute.models import VirtualMachine
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


def vm_operation_start(
    *, vm: VirtualMachine, action: str, user=None, actor=None, request=None, params=None, details=None
):
    """Create the Operation on a VM locked by ``vm_lock_for_action``, set its task_state, audit."""
    operation = operation_create(vm=vm, action=action, requested_by=user, params=params)
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
    if action not in (Action.START, Action.STOP, Action.REBOOT, Action.DELETE):
        raise InvalidInput(f"Unknown action {action!r}; use start, stop, reboot or delete.")
    vm = vm_lock_for_action(vm=vm, action=action, user=user)
    return vm_operation_start(vm=vm, action=action, user=user, actor=actor, request=request, params=params)


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
