"""Write-back: the one place a VM's confirmed state is decided and written.

Whatever learns what a hypervisor did comes here: an operation that succeeded or
failed (operations.py), an operator's cancel (operator.py) or resync (vms.py),
reconciliation (reconcile.py) and approval, which opens the timeline (requests.py).

- ``status_for_power``, ``status_after_success``, ``status_after_failure`` and
  ``status_after_observation`` decide the VM's status: pure, table-tested.
- ``vm_record_status`` writes it with what the hypervisor reported.
- ``vm_timeline_append`` appends the ``VMStatusEvent`` billing meters from.
- ``vm_quota_release`` gives a VM's quota back once.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from compute.choices import ACTION_RESULT_STATUS, STATUS_KEEPING_ACTIONS, Action, PowerState, VMStatus
from compute.models import Operation, VirtualMachine, VMStatusEvent

from .ipam import ipam_release_for_vm
from .quotas import quota_release

# The stable status a reported power state proves; any other power state proves nothing.
POWER_STATUS = {PowerState.RUNNING: VMStatus.ACTIVE, PowerState.STOPPED: VMStatus.STOPPED}


def status_for_power(power_state: str | None, default: str | None = None) -> str | None:
    return POWER_STATUS.get(power_state, default)


def status_after_success(*, action: str, observed: dict | None, previous_status: str = "") -> str:
    """A finished action leaves its result status, unless the hypervisor reports otherwise
    (a start whose guest is seen stopped is stopped). A delete is deleted, whatever it says.
    A day-2 action (snapshot, resize, rebuild) keeps the status the VM had."""
    if action in STATUS_KEEPING_ACTIONS:
        status = previous_status or VMStatus.ERROR
    else:
        status = ACTION_RESULT_STATUS[action]
    if observed and action != Action.DELETE:
        status = status_for_power(observed.get("power_state"), status)
    return status


def status_after_failure(
    *, action: str, observed: dict | None, observed_known: bool, submitted: bool, previous_status: str
) -> str:
    """The status a failed action leaves: what the hypervisor confirms, if it could say.

    A failed create is in error. Otherwise, a confirmed absent guest is deleted (after a
    delete) or in error; a confirmed guest has the status its power state proves (error
    if none); unknown, the VM keeps its status when the hypervisor never got the action,
    and is in error when it did.
    """
    if action == Action.CREATE:
        return VMStatus.ERROR
    if observed_known and observed is None:
        return VMStatus.DELETED if action == Action.DELETE else VMStatus.ERROR
    if observed_known:
        return status_for_power(observed.get("power_state")) or VMStatus.ERROR
    if not submitted:
        return previous_status or VMStatus.ERROR
    return VMStatus.ERROR


# What an action wants the hypervisor to show. Past its deadline an operation whose guest shows
# it counts as done (compute/retry.py); a delete wants no guest; any other action (a create, a
# day-2 action) cannot be judged from the power state and fails at its deadline.
DESIRED_POWER = {Action.START: PowerState.RUNNING, Action.REBOOT: PowerState.RUNNING, Action.STOP: PowerState.STOPPED}


def desired_state_reached(*, action: str, observed: dict | None, observed_known: bool) -> bool:
    if not observed_known:
        return False
    if action == Action.DELETE:
        return observed is None
    wanted = DESIRED_POWER.get(action)
    return wanted is not None and observed is not None and observed.get("power_state") == wanted


def status_after_observation(*, current: str, observed: dict | None) -> str:
    """An operator's resync: a guest confirmed absent is in error, and deleted when it was
    already in error; a guest seen has the status its power state proves (else unchanged)."""
    if observed is None:
        return VMStatus.DELETED if current == VMStatus.ERROR else VMStatus.ERROR
    return status_for_power(observed.get("power_state"), current)


def vm_timeline_append(
    *, vm: VirtualMachine, status: str, power_state: str, at: datetime, source: str, operation: Operation | None = None
) -> VMStatusEvent:
    """Append a confirmed change to the VM's timeline (billing charges from these rows).
    Each event carries the plan in force from its instant (a resize appends one)."""
    return VMStatusEvent.objects.create(
        vm=vm, status=status, power_state=power_state, at=at, operation=operation, source=source, plan_id=vm.plan_id
    )


def vm_timeline_append_many(
    *, vms: list[VirtualMachine], status: str, power_state: str, at: datetime, source: str
) -> None:
    """``vm_timeline_append`` for many new VMs at once (a batch's approval), one INSERT."""
    VMStatusEvent.objects.bulk_create(
        VMStatusEvent(vm=vm, status=status, power_state=power_state, at=at, source=source, plan_id=vm.plan_id)
        for vm in vms
    )


def vm_quota_release(*, vm: VirtualMachine) -> None:
    """Give the VM's quota back, once (``quota_held`` says whether it still holds it)."""
    if vm.quota_held:
        quota_release(project=vm.project, plan=vm.plan)
        VirtualMachine.objects.filter(pk=vm.pk).update(quota_held=False)
        vm.quota_held = False


def vm_record_status(
    *, vm: VirtualMachine, status: str, observed: dict | None, operation: Operation | None = None, source: str
) -> None:
    """Write back a confirmed state (operation finished, resync, operator).

    The caller holds the VM's row lock. Clears ``task_state`` when written for an
    operation, keeps ``power_state`` as the hypervisor said (it is the authority on it),
    appends to the timeline when status or power changed, and releases the quota of a
    VM that is now deleted.
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
        vm_timeline_append(
            vm=vm,
            status=status,
            power_state=fields.get("power_state", vm.power_state),
            at=now,
            operation=operation,
            source=source,
        )
    if status == VMStatus.DELETED:
        vm_quota_release(vm=vm)
        ipam_release_for_vm(vm=vm)
