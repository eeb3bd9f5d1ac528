"""Backups a user asks for (backup now, restore, delete) and the ones beat takes on a schedule.

Each backup, restore and delete is an Operation on the one engine, created like the other
day-2 actions (``vm_lock_for_action``: the allowed-from table, one action at a time, the
hypervisor's ``backups`` capability). The backup row is written in the same transaction as
its operation; the result is applied by backup_writeback.py. What the worker submits is
workers/backups.py.

Limits: a plan's ``max_backups`` caps a VM's *manual* backups (backup now refuses beyond it)
and the *retention* a schedule may keep; scheduled backups beyond the retention are deleted
oldest first by ``backup_retention_enforce`` (beat), each through a delete operation.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

import audit
from accounts.choices import Role
from accounts.selectors import project_require_role
from compute import capabilities
from compute.choices import BACKUP_LIVE_STATES, Action, BackupFrequency, BackupKind, BackupState, VMStatus
from compute.models import Backup, BackupSchedule, Operation, VirtualMachine
from controlplane.errors import Conflict, InvalidInput

from .vms import vm_lock_for_action, vm_operation_start

logger = logging.getLogger(__name__)

# Backups can be deleted from these states (an error'd backup may have left a partial copy).
DELETABLE_STATES = (BackupState.AVAILABLE, BackupState.MISSING, BackupState.ERROR)


def _require(vm: VirtualMachine) -> None:
    if not capabilities.supports(vm.hypervisor.kind, capabilities.BACKUPS):
        where = vm.hypervisor.region or vm.hypervisor.name
        raise Conflict(f"Backups are not available on {where}.", code="unsupported")
    if vm.plan.max_backups == 0:
        raise Conflict(f"Plan {vm.plan.name} includes no backups.", code="backup_limit")


@transaction.atomic
def vm_backup_create(
    *, vm: VirtualMachine, kind: str = BackupKind.MANUAL, user=None, actor=None, request=None
) -> Operation:
    """Copy the VM's disk to backup storage. A manual backup counts against the plan's
    ``max_backups``; a scheduled one (``actor`` "scheduler") against its schedule's retention."""
    vm = vm_lock_for_action(vm=vm, action=Action.BACKUP_CREATE, user=user)
    _require(vm)
    if kind == BackupKind.MANUAL:
        live = Backup.objects.filter(vm=vm, kind=BackupKind.MANUAL, state__in=BACKUP_LIVE_STATES).count()
        if live >= vm.plan.max_backups:
            raise Conflict(
                f"{vm.name} has {live} manual backups, the most its plan {vm.plan.name} allows; delete one first.",
                code="backup_limit",
            )
    backup = Backup.objects.create(vm=vm, kind=kind, created_by=user, backend_ref="")
    backup.backend_ref = f"cp-backup-{backup.pk}"
    operation = vm_operation_start(
        vm=vm,
        action=Action.BACKUP_CREATE,
        user=user,
        actor=actor,
        request=request,
        params={"backup": backup.pk, "ref": backup.backend_ref},
        details={"backup": backup.pk, "kind": kind},
    )
    Backup.objects.filter(pk=backup.pk).update(backend_ref=backup.backend_ref, operation=operation)
    return operation


def _backup_action(
    *, backup: Backup, action: str, allowed: tuple, user, actor, request, next_state: str | None
) -> Operation:
    vm = vm_lock_for_action(vm=backup.vm, action=action, user=user)
    _require(vm)
    backup = Backup.objects.select_for_update(no_key=True, of=("self",)).get(pk=backup.pk)
    if backup.state not in allowed:
        raise Conflict(f"Backup {backup.pk} of {vm.name} is {backup.get_state_display().lower()}.")
    operation = vm_operation_start(
        vm=vm,
        action=action,
        user=user,
        actor=actor,
        request=request,
        params={"backup": backup.pk, "ref": backup.backend_ref, "from_state": backup.state},
        details={"backup": backup.pk, "kind": backup.kind},
    )
    Backup.objects.filter(pk=backup.pk).update(state=next_state or backup.state, operation=operation)
    return operation


@transaction.atomic
def vm_backup_restore(*, backup: Backup, user=None, request=None) -> Operation:
    """Replace the VM's disk with the backup's copy (everything written since is lost; callers
    ask a user with 2FA for a fresh code). The VM's power state afterwards is what it was."""
    return _backup_action(
        backup=backup,
        action=Action.BACKUP_RESTORE,
        allowed=(BackupState.AVAILABLE,),
        user=user,
        actor=None,
        request=request,
        next_state=None,
    )


@transaction.atomic
def vm_backup_delete(*, backup: Backup, user=None, actor=None, request=None) -> Operation:
    return _backup_action(
        backup=backup,
        action=Action.BACKUP_DELETE,
        allowed=DELETABLE_STATES,
        user=user,
        actor=actor,
        request=request,
        next_state=BackupState.DELETING,
    )


# -- schedules --------------------------------------------------------------------------------


@transaction.atomic
def backup_schedule_set(
    *,
    vm: VirtualMachine,
    user,
    frequency: str,
    window_start: time,
    retention: int,
    weekday: int | None = None,
    window_minutes: int = 120,
    tz: str = "Asia/Kolkata",
    enabled: bool = True,
    request=None,
) -> BackupSchedule:
    """Create or replace the VM's schedule (checked against the plan and the capability)."""
    project_require_role(user=user, project=vm.project, role=Role.MEMBER)
    vm = (
        VirtualMachine.objects.select_for_update(no_key=True, of=("self",))
        .select_related("plan", "hypervisor")
        .get(pk=vm.pk)
    )
    if vm.status == VMStatus.DELETED:
        raise Conflict(f"{vm.name} is deleted.")
    _require(vm)
    errors = {}
    if frequency not in BackupFrequency.values:
        errors["frequency"] = ["Choose daily or weekly."]
    if frequency == BackupFrequency.WEEKLY and (weekday is None or not 0 <= weekday <= 6):
        errors["weekday"] = ["A weekly schedule needs a weekday, 0 (Monday) to 6 (Sunday)."]
    if retention < 1:
        errors["retention"] = ["Keep at least 1 backup."]
    if not 30 <= window_minutes <= 720:
        errors["window_minutes"] = ["The window is 30 to 720 minutes long."]
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        errors["timezone"] = [f"Unknown time zone {tz!r}."]
    if errors:
        raise InvalidInput("The backup schedule is not valid.", fields=errors)
    if retention > vm.plan.max_backups:  # the VM's plan decides: a 409, as other plan limits
        raise Conflict(
            f"Keep between 1 and {vm.plan.max_backups} backups (the plan {vm.plan.name} allows).",
            code="backup_limit",
            fields={"retention": [f"At most {vm.plan.max_backups} on the plan {vm.plan.name}."]},
        )
    schedule, created = BackupSchedule.objects.update_or_create(
        vm=vm,
        defaults={
            "frequency": frequency,
            "weekday": weekday if frequency == BackupFrequency.WEEKLY else None,
            "window_start": window_start,
            "window_minutes": window_minutes,
            "timezone": tz,
            "retention": retention,
            "enabled": enabled,
        },
    )
    audit.record(
        actor=user,
        action="vm.backup_schedule.set",
        target=vm,
        project=vm.project,
        request=request,
        details={
            "frequency": frequency,
            "weekday": schedule.weekday,
            "window_start": window_start.strftime("%H:%M"),
            "window_minutes": window_minutes,
            "timezone": tz,
            "retention": retention,
            "enabled": enabled,
        },
    )
    return schedule


@transaction.atomic
def backup_schedule_delete(*, vm: VirtualMachine, user, request=None) -> None:
    """Stop scheduled backups (the backups already taken are kept)."""
    project_require_role(user=user, project=vm.project, role=Role.MEMBER)
    if BackupSchedule.objects.filter(vm=vm).delete()[0]:
        audit.record(actor=user, action="vm.backup_schedule.deleted", target=vm, project=vm.project, request=request)


def backup_window_start(*, schedule: BackupSchedule, now: datetime) -> datetime | None:
    """The start (UTC) of the schedule's window that contains ``now``, or None when outside one.
    A window may run past midnight: yesterday's is looked at too."""
    zone = ZoneInfo(schedule.timezone)
    local = now.astimezone(zone)
    for days_back in (0, 1):
        day = local.date() - timedelta(days=days_back)
        if schedule.frequency == BackupFrequency.WEEKLY and day.weekday() != schedule.weekday:
            continue
        start = datetime.combine(day, schedule.window_start, tzinfo=zone)
        if start <= local < start + timedelta(minutes=schedule.window_minutes):
            return start.astimezone(ZoneInfo("UTC"))
    return None


def backup_schedules_run(*, now: datetime | None = None) -> dict:
    """Beat: start one backup operation per schedule whose window is open and that has not run
    in it; a VM that is busy (or in a state that allows no backup) is skipped, reported on the
    schedule and audited once per window, and tried again on the next pass inside the window."""
    now = now or timezone.now()
    started, skipped = 0, 0
    schedules = BackupSchedule.objects.filter(enabled=True).exclude(vm__status=VMStatus.DELETED)
    for schedule in schedules.only("id", "frequency", "weekday", "window_start", "window_minutes", "timezone"):
        window = backup_window_start(schedule=schedule, now=now)
        if window is None:
            continue
        outcome = _run_one(schedule_id=schedule.pk, window=window, now=now)
        started += outcome == "started"
        skipped += outcome == "skipped"
    return {"started": started, "skipped": skipped, "retention_deletes": backup_retention_enforce()}


@transaction.atomic
def _run_one(*, schedule_id: int, window: datetime, now: datetime) -> str:
    schedule = (
        BackupSchedule.objects.select_for_update(skip_locked=True, no_key=True, of=("self",))
        .select_related("vm")
        .filter(pk=schedule_id)
        .first()
    )
    if schedule is None or (schedule.last_run_at and schedule.last_run_at >= window):
        return "done"
    try:
        with transaction.atomic():
            vm_backup_create(vm=schedule.vm, kind=BackupKind.SCHEDULED, actor="scheduler")
    except Conflict as exc:
        first = not schedule.last_skipped_at or schedule.last_skipped_at < window
        BackupSchedule.objects.filter(pk=schedule.pk).update(last_skipped_at=now, last_skip_reason=exc.message[:300])
        if first:
            audit.record(
                actor="scheduler",
                action="vm.backup_create.skipped",
                target=schedule.vm,
                project=schedule.vm.project_id,
                details={"reason": exc.message, "window_start": window.isoformat()},
            )
        return "skipped"
    BackupSchedule.objects.filter(pk=schedule.pk).update(last_run_at=now, last_skip_reason="")
    return "started"


def backup_retention_enforce() -> int:
    """Start one delete operation per VM whose available scheduled backups exceed its schedule's
    retention (the oldest first); a busy VM is left for the next pass. Returns how many started."""
    scheduled = Backup.objects.filter(kind=BackupKind.SCHEDULED, state=BackupState.AVAILABLE)
    over = (
        scheduled.filter(vm__backup_schedule__isnull=False)
        .exclude(vm__status=VMStatus.DELETED)
        .values("vm_id")
        .annotate(kept=Count("id"))
        .filter(kept__gt=F("vm__backup_schedule__retention"))
    )
    started = 0
    for row in over:
        oldest = scheduled.filter(vm_id=row["vm_id"]).select_related("vm").order_by("created_at", "id").first()
        try:
            vm_backup_delete(backup=oldest, actor="scheduler:retention")
        except Conflict as exc:
            logger.info("retention: backup %s of VM %s waits: %s", oldest.pk, row["vm_id"], exc.message)
            continue
        started += 1
    return started
