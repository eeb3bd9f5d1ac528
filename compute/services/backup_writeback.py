"""Write-back of backup operations: what their result means for the Backup row.

Called from day2_writeback.py (so from operation_succeed / operation_fail / an operator's
cancel and retry) in the same transaction as the VM's confirmed status. A restore changes
no backup row: the VM's status is what the hypervisor reports afterwards.
"""

from __future__ import annotations

from django.utils import timezone

from compute.choices import Action, BackupState
from compute.models import Backup, Operation


def backup_after_success(*, operation: Operation, result: dict) -> None:
    rows = Backup.objects.filter(pk=operation.params["backup"])
    if operation.action == Action.BACKUP_CREATE:
        rows.update(
            state=BackupState.AVAILABLE,
            size_bytes=result.get("size_bytes"),
            completed_at=timezone.now(),
            missing_since=None,
        )
    elif operation.action == Action.BACKUP_DELETE:
        rows.update(state=BackupState.DELETED, deleted_at=timezone.now())


def backup_after_failure(*, operation: Operation) -> None:
    rows = Backup.objects.filter(pk=operation.params["backup"])
    if operation.action == Action.BACKUP_CREATE:
        rows.update(state=BackupState.ERROR)
    elif operation.action == Action.BACKUP_DELETE:
        rows.filter(state=BackupState.DELETING).update(state=operation.params.get("from_state", BackupState.AVAILABLE))


def backup_before_retry(*, operation: Operation) -> None:
    """An operator retries a failed backup operation: the row goes back to in progress."""
    rows = Backup.objects.filter(pk=operation.params["backup"])
    if operation.action == Action.BACKUP_CREATE:
        rows.update(state=BackupState.CREATING)
    elif operation.action == Action.BACKUP_DELETE:
        rows.update(state=BackupState.DELETING)
