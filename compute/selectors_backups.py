"""Reads of backups and backup schedules (writes: compute/services/backups.py)."""

from django.db.models import QuerySet

from .choices import BackupState
from .models import Backup, BackupSchedule, VirtualMachine


def backup_list_for_vm(*, vm: VirtualMachine, include_deleted: bool = False) -> QuerySet[Backup]:
    backups = Backup.objects.filter(vm=vm).select_related("operation")
    return backups if include_deleted else backups.exclude(state=BackupState.DELETED)


def backup_get_for_vm(*, vm: VirtualMachine, pk: int) -> Backup | None:
    return backup_list_for_vm(vm=vm).filter(pk=pk).first()


def backup_schedule_for_vm(*, vm: VirtualMachine) -> BackupSchedule | None:
    return BackupSchedule.objects.filter(vm=vm).first()
