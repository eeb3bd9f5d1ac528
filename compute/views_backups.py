"""Portal: the Backups tab of a VM's page (backup now, restore with a fresh two-factor code,
delete, and the schedule). Writes go through compute/services/backups.py; its refusals become
messages (portal_errors). The tab lives in the VM page's live region, so a backup in progress
shows its progress and the page stops polling when it ends."""

from datetime import time

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.choices import Role
from accounts.security import require_recent_otp
from accounts.views.common import with_project
from controlplane.errors import Conflict, InvalidInput, NotFound

from . import capabilities, selectors, selectors_backups, services
from .choices import ACTION_ALLOWED_FROM, Action, BackupFrequency, BackupState

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def backups_context(vm, can_act: bool) -> dict:
    supported = capabilities.supports(vm.hypervisor.kind, capabilities.BACKUPS)
    return {
        "backups_supported": supported,
        "backups": list(selectors_backups.backup_list_for_vm(vm=vm)) if supported else [],
        "backup_schedule": selectors_backups.backup_schedule_for_vm(vm=vm) if supported else None,
        "backup_available": BackupState.AVAILABLE,
        "backup_deletable": ("available", "missing", "error"),
        "can_backup": can_act and supported and vm.status in ACTION_ALLOWED_FROM[Action.BACKUP_CREATE],
        "backup_weekdays": list(enumerate(WEEKDAYS)),
        "backup_frequencies": BackupFrequency.choices,
        "backup_retention_choices": range(1, vm.plan.max_backups + 1),
        "portal_time_zone": settings.TIME_ZONE,
    }


def _back(project, vm):
    return redirect(reverse("compute:vm_detail", args=[project.slug, vm.pk]) + "#backups-h")


def _backup(project, pk, backup_pk):
    vm = selectors.vm_get_for_project(project=project, pk=pk)
    backup = selectors_backups.backup_get_for_vm(vm=vm, pk=backup_pk)
    if backup is None:
        raise NotFound("No such backup.")
    return vm, backup


@require_POST
@with_project(Role.MEMBER)
def vm_backup_create(request, project, pk):
    vm = selectors.vm_get_for_project(project=project, pk=pk)
    services.vm_backup_create(vm=vm, user=request.user, request=request)
    messages.success(request, f"Backup of {vm.name} requested.")
    return _back(project, vm)


@require_POST
@with_project(Role.MEMBER)
@require_recent_otp
def vm_backup_restore(request, project, pk, backup_pk):
    """Restore replaces the disk: a fresh two-factor code, like delete."""
    vm, backup = _backup(project, pk, backup_pk)
    services.vm_backup_restore(backup=backup, user=request.user, request=request)
    messages.success(request, f"Restore of {vm.name} from its backup of {backup.created_at:%d %b %Y} requested.")
    return _back(project, vm)


@require_POST
@with_project(Role.MEMBER)
def vm_backup_delete(request, project, pk, backup_pk):
    vm, backup = _backup(project, pk, backup_pk)
    services.vm_backup_delete(backup=backup, user=request.user, request=request)
    messages.success(request, "Deletion of the backup requested.")
    return _back(project, vm)


def _int(value: str, label: str) -> int | None:
    if value in ("", None):
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"{label}: enter a whole number.") from None


@require_POST
@with_project(Role.MEMBER)
def vm_backup_schedule(request, project, pk):
    """Set the schedule (times in the portal's time zone), or remove it (``remove``)."""
    vm = selectors.vm_get_for_project(project=project, pk=pk)
    if request.POST.get("remove"):
        services.backup_schedule_delete(vm=vm, user=request.user, request=request)
        messages.success(request, f"Scheduled backups of {vm.name} stopped; the backups taken are kept.")
        return _back(project, vm)
    try:
        start = time.fromisoformat(request.POST.get("window_start", ""))
    except ValueError:
        raise InvalidInput("Window start: enter a time as HH:MM.") from None
    try:
        services.backup_schedule_set(
            vm=vm,
            user=request.user,
            frequency=request.POST.get("frequency", ""),
            weekday=_int(request.POST.get("weekday"), "Weekday"),
            window_start=start,
            window_minutes=_int(request.POST.get("window_minutes"), "Window length") or 120,
            retention=_int(request.POST.get("retention"), "Backups kept") or 0,
            tz=settings.TIME_ZONE,
            enabled=bool(request.POST.get("enabled")),
            request=request,
        )
    except (InvalidInput, Conflict) as exc:  # Conflict: over the plan's limit
        for errors in exc.fields.values():
            for error in errors:
                messages.error(request, error)
        if not exc.fields:
            raise
        return _back(project, vm)
    messages.success(request, f"Backup schedule of {vm.name} saved.")
    return _back(project, vm)
