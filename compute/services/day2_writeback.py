"""Write-back of day-2 operations: what their result means for snapshots and plans.

Called by operation_succeed / operation_fail (operations.py) in the same transaction
as the VM's confirmed status, with the VM row locked. A resize that succeeded moves
the VM to its new plan and appends a timeline event carrying it, at the instant the
hypervisor's answer was written: billing prices every second after it at the new
plan (billing/services/metering.py).
"""

from __future__ import annotations

from django.utils import timezone

from compute.choices import BACKUP_ACTIONS, Action, SnapshotState
from compute.models import Operation, Snapshot, VirtualMachine

from .backup_writeback import backup_after_failure, backup_after_success, backup_before_retry
from .quotas import quota_adjust
from .writeback import vm_timeline_append


def _release(vm: VirtualMachine, amounts: dict | None) -> None:
    amounts = {field: -int(value) for field, value in (amounts or {}).items() if value}
    if amounts and vm.quota_held:
        quota_adjust(project=vm.project, **amounts)


def day2_after_success(*, operation: Operation, vm: VirtualMachine, result: dict | None) -> None:
    params, result = operation.params, result or {}
    if operation.action in BACKUP_ACTIONS:
        backup_after_success(operation=operation, result=result)
    if operation.action == Action.SNAPSHOT_CREATE:
        Snapshot.objects.filter(pk=params["snapshot"]).update(
            state=SnapshotState.AVAILABLE, size_bytes=result.get("size_bytes"), missing_since=None
        )
    elif operation.action == Action.SNAPSHOT_DELETE:
        Snapshot.objects.filter(pk=params["snapshot"]).update(state=SnapshotState.DELETED, deleted_at=timezone.now())
    elif operation.action == Action.RESIZE:
        VirtualMachine.objects.filter(pk=vm.pk).update(plan_id=params["plan"])
        vm.plan_id = params["plan"]
        vm_timeline_append(
            vm=vm, status=vm.status, power_state=vm.power_state, at=timezone.now(), source="worker", operation=operation
        )
        _release(vm, params.get("release_on_success"))
    elif operation.action == Action.REBUILD:
        fields = {"image_id": params["image"]}
        fields.update({name: params[name] for name in ("ssh_public_key", "user_data") if name in params})
        VirtualMachine.objects.filter(pk=vm.pk).update(**fields)


def day2_after_failure(*, operation: Operation, vm: VirtualMachine) -> None:
    params = operation.params
    if operation.action in BACKUP_ACTIONS:
        backup_after_failure(operation=operation)
    if operation.action == Action.SNAPSHOT_CREATE:
        Snapshot.objects.filter(pk=params["snapshot"]).update(state=SnapshotState.ERROR)
    elif operation.action == Action.SNAPSHOT_DELETE:
        Snapshot.objects.filter(pk=params["snapshot"], state=SnapshotState.DELETING).update(
            state=SnapshotState.AVAILABLE
        )
    elif operation.action == Action.RESIZE:
        _release(vm, params.get("reserved"))


def day2_before_retry(*, operation: Operation, vm: VirtualMachine) -> None:
    """An operator retries a failed day-2 operation: take back what its failure gave up."""
    params = operation.params
    if operation.action in BACKUP_ACTIONS:
        backup_before_retry(operation=operation)
    if operation.action == Action.SNAPSHOT_CREATE:
        Snapshot.objects.filter(pk=params["snapshot"]).update(state=SnapshotState.CREATING)
    elif operation.action == Action.SNAPSHOT_DELETE:
        Snapshot.objects.filter(pk=params["snapshot"]).update(state=SnapshotState.DELETING)
    elif operation.action == Action.RESIZE and vm.quota_held:
        quota_adjust(project=vm.project, **{field: int(value) for field, value in params.get("reserved", {}).items()})
