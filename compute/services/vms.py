"""VM actions and write-back of what the hypervisor confirmed."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

import audit
from accounts.choices import Role
from accounts.selectors import project_require_role
from compute import dispatch
from compute.choices import ACTION_ALLOWED_FROM, Action, PowerState, VMStatus
from compute.models import VirtualMachine, VMStatusEvent
from controlplane.errors import Conflict, InvalidInput


def vm_record_status(*, vm: VirtualMachine, status: str, observed: dict | None, operation=None, source: str) -> None:
    """Write back a confirmed state (operation finished, reconciliation, operator).

    Clears ``task_state`` when written for an operation, records the
    timeline event billing meters from, and keeps ``power_state`` as the
    hypervisor said (it is the authority on it).
    """
    now = timezone.now()
    fields = {"status": status, "updated_at": now}
    if operation is not None:
        fields["task_state"] = None
    if observed:
        fields["power_state"] = observed.get("power_state") or PowerState.UNKNOWN
        fields["power_state_at"] = now
        if observed.get("backend_id"):
            fields["backend_id"] = observed["backend_id"]
        if observed.get("ip_addresses") is not None:
            fields["ip_addresses"] = list(observed["ip_addresses"])
        fields["missing_since"] = None
        fields["lost_at"] = None
    elif status == VMStatus.DELETED:
        fields["power_state"] = PowerState.STOPPED
        fields["power_state_at"] = now
        fields["ip_addresses"] = []
    if status == VMStatus.DELETED:
        fields["deleted_at"] = now
    status_changed = status != vm.status
    if status_changed:
        fields["status_changed_at"] = now
    VirtualMachine.objects.filter(pk=vm.pk).update(**fields)
    for name, value in fields.items():
        setattr(vm, name, value)
    if status_changed or (observed and observed.get("power_state") != vm.power_state):
        VMStatusEvent.objects.create(
            vm=vm,
            status=status,
            power_state=fields.get("power_state", vm.power_state),
            at=now,
            operation=operation,
            source=source,
        )


@transaction.atomic
def vm_action(*, vm: VirtualMachine, action: str, user=None, actor=None, request=None, params=None):
    """Start / stop / reboot / delete: check, create the Operation, set task_state.

    ``user`` is the acting person (role checked: member or better); system
    callers (billing suspension) pass ``user=None`` and an ``actor`` name.
    Returns the Operation; its task is published when the transaction commits.
    """
    from .operations import operation_create

    if action not in ACTION_ALLOWED_FROM:
        raise InvalidInput(f"Unknown action {action!r}; use start, stop, reboot or delete.")
    if user is not None:
        project_require_role(user=user, project=vm.project, role=Role.MEMBER)
    vm = (
        VirtualMachine.objects.select_for_update(no_key=True, of=("self",))
        .select_related("project", "hypervisor")
        .get(pk=vm.pk)
    )
    if vm.task_state:
        raise Conflict(f"{vm.name} is busy ({vm.get_task_state_display().lower()} in progress); wait for it to finish.")
    if vm.status not in ACTION_ALLOWED_FROM[action]:
        raise Conflict(f"Cannot {action} {vm.name}: it is {vm.get_status_display().lower()}.")
    if action in (Action.START, Action.REBOOT) and vm.project.is_suspended:
        raise Conflict(
            f"Project {vm.project.name} is suspended: {vm.project.suspended_reason or 'see billing'}.",
            code="project_suspended",
        )
    operation = operation_create(vm=vm, action=action, requested_by=user, params=params)
    VirtualMachine.objects.filter(pk=vm.pk).update(task_state=action)
    vm.task_state = action
    audit.record(
        actor=user or actor or "system",
        action=f"vm.{action}.requested",
        target=vm,
        project=vm.project,
        details={"operation": operation.pk},
        request=request,
    )
    return operation


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
    from .quotas import quota_release

    vm = (
        VirtualMachine.objects.select_for_update(no_key=True, of=("self",))
        .select_related("project", "plan")
        .get(pk=vm_id)
    )
    if vm.task_state or vm.status == VMStatus.DELETED:
        return None
    if observed is None:
        status = VMStatus.DELETED if vm.status == VMStatus.ERROR else VMStatus.ERROR
        if status == VMStatus.ERROR:
            VirtualMachine.objects.filter(pk=vm.pk).update(power_state=PowerState.MISSING)
    else:
        status = {PowerState.RUNNING: VMStatus.ACTIVE, PowerState.STOPPED: VMStatus.STOPPED}.get(
            observed.get("power_state"), vm.status
        )
    before = vm.status
    vm_record_status(vm=vm, status=status, observed=observed, source=source)
    if status == VMStatus.DELETED and vm.quota_held:
        quota_release(project=vm.project, plan=vm.plan)
        VirtualMachine.objects.filter(pk=vm.pk).update(quota_held=False)
    audit.record(
        actor=source,
        action="drift.detected" if before != status else "admin.action",
        target=vm,
        project=vm.project,
        details={"resync": True, "before": before, "after": status, "observed": observed},
    )
    return vm
