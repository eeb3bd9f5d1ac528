"""Reconciliation: compare one hypervisor listing with the database.

The hypervisor is the authority on power state. A VM missing from the listing
gets ``missing_since`` and is flagged lost only after a grace period; a guest
on the hypervisor that no VM row knows is reported. VMs with an operation in
progress are skipped (the operation owns them). Every write is guarded so a
listing taken before an operation finished never overwrites its result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

import audit
from compute.choices import ACTIVE_OPERATION_STATES, Action, PowerState, VMStatus
from compute.models import Hypervisor, Operation, VirtualMachine

from .writeback import status_for_power, vm_timeline_append

logger = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    hypervisor: str
    seen: int = 0
    updated: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "hypervisor": self.hypervisor,
            "seen": self.seen,
            "updated": len(self.updated),
            "missing": len(self.missing),
            "lost": len(self.lost),
            "unknown": len(self.unknown),
        }


def _guard(vm: VirtualMachine, listed_at: datetime):
    """The VM as we read it, idle, and not reported on since the listing was taken."""
    return VirtualMachine.objects.filter(pk=vm.pk, task_state__isnull=True, status=vm.status).filter(
        Q(power_state_at__isnull=True) | Q(power_state_at__lt=listed_at)
    )


def _drift(vm: VirtualMachine, kind: str, **details) -> None:
    audit.record(
        actor="reconciler",
        action="drift.detected",
        target=vm,
        project=vm.project_id,
        details={"kind": kind, "hypervisor": vm.hypervisor_id, **details},
    )


def _apply_seen(vm: VirtualMachine, seen: dict, listed_at: datetime, report: ReconcileReport) -> None:
    power = seen.get("power_state") or PowerState.UNKNOWN
    status = status_for_power(power, vm.status)
    if vm.status == VMStatus.ERROR and not vm.lost_at:
        status = VMStatus.ERROR  # an operation failure needs an operator's resync, not a silent fix
    fields = {"power_state": power, "power_state_at": listed_at, "missing_since": None, "lost_at": None}
    if seen.get("ip_addresses"):
        fields["ip_addresses"] = list(seen["ip_addresses"])
    if status != vm.status:
        fields["status"], fields["status_changed_at"] = status, listed_at
    changed = status != vm.status or power != vm.power_state or vm.missing_since is not None
    if not changed:
        return  # decided before any transaction: an idle pass costs no round trip per VM
    with transaction.atomic():
        if _guard(vm, listed_at).update(**fields):
            report.updated.append(vm.pk)
            vm_timeline_append(vm=vm, status=status, power_state=power, at=listed_at, source="reconciler")
            _drift(
                vm,
                "state_changed",
                before={"status": vm.status, "power": vm.power_state},
                after={"status": status, "power": power},
            )


def _apply_missing(vm: VirtualMachine, listed_at: datetime, grace: timedelta, report: ReconcileReport) -> None:
    if vm.missing_since is None:
        if _guard(vm, listed_at).update(missing_since=listed_at):  # one statement: atomic by itself
            report.missing.append(vm.pk)
        return
    if vm.lost_at is None and listed_at - vm.missing_since >= grace:
        with transaction.atomic():
            _mark_lost(vm, listed_at, report)


def _mark_lost(vm: VirtualMachine, listed_at: datetime, report: ReconcileReport) -> None:
    updated = _guard(vm, listed_at).update(
        status=VMStatus.ERROR,
        power_state=PowerState.MISSING,
        power_state_at=listed_at,
        lost_at=listed_at,
        status_changed_at=listed_at,
    )
    if updated:
        report.lost.append(vm.pk)
        vm_timeline_append(
            vm=vm, status=VMStatus.ERROR, power_state=PowerState.MISSING, at=listed_at, source="reconciler"
        )
        _drift(vm, "lost", missing_since=vm.missing_since.isoformat())


def hypervisor_reconcile(*, hypervisor: Hypervisor, observed: list[dict], listed_at: datetime) -> ReconcileReport:
    """Apply one listing (``observed``: dicts with backend_id, power_state,
    ip_addresses, idempotency_key) taken at ``listed_at``."""
    report = ReconcileReport(hypervisor=hypervisor.name, seen=len(observed))
    grace = timedelta(seconds=settings.ENGINE["MISSING_GRACE_SECONDS"])
    by_id = {item["backend_id"]: item for item in observed}
    known_ids: set[str] = set()
    vms = (
        VirtualMachine.objects.filter(hypervisor=hypervisor)
        .exclude(status=VMStatus.DELETED)
        .only(
            "id",
            "backend_id",
            "status",
            "task_state",
            "power_state",
            "missing_since",
            "lost_at",
            "project_id",
            "hypervisor_id",
            "created_at",
            "name",
        )
    )
    for vm in vms.iterator(chunk_size=2000):
        if vm.backend_id:
            known_ids.add(vm.backend_id)
        if vm.task_state or not vm.backend_id or vm.status == VMStatus.BUILDING:
            continue
        seen = by_id.get(vm.backend_id)
        try:
            if seen is not None:
                _apply_seen(vm, seen, listed_at, report)
            else:
                _apply_missing(vm, listed_at, grace, report)
        except OperationalError as exc:  # lock timeout: another process holds the row; the next pass sees it
            logger.warning("reconcile: skipped VM %s: %s", vm.pk, exc)
    building_keys = {
        str(key)
        for key in Operation.objects.filter(
            hypervisor=hypervisor, action=Action.CREATE, state__in=ACTIVE_OPERATION_STATES
        ).values_list("idempotency_key", flat=True)
    }
    report.unknown = sorted(
        item["backend_id"]
        for item in observed
        if item["backend_id"] not in known_ids and (item.get("idempotency_key") or "") not in building_keys
    )
    _record_unknown(hypervisor, report.unknown, listed_at)
    return report


@transaction.atomic
def _record_unknown(hypervisor: Hypervisor, unknown: list[str], listed_at: datetime) -> None:
    hv = Hypervisor.objects.select_for_update(no_key=True, of=("self",)).get(pk=hypervisor.pk)
    previous = set(hv.drift.get("unknown", []))
    for backend_id in sorted(set(unknown) - previous):
        audit.record(
            actor="reconciler",
            action="drift.detected",
            target=hv,
            details={"kind": "unknown_guest", "backend_id": backend_id},
        )
    hv.drift = {"unknown": unknown, "checked_at": listed_at.isoformat()}
    hv.last_checked_at = timezone.now()
    hv.save(update_fields=["drift", "last_checked_at"])


@transaction.atomic
def hypervisor_record_check(*, hypervisor: Hypervisor, result: dict) -> None:
    Hypervisor.objects.filter(pk=hypervisor.pk).update(last_check=result, last_checked_at=timezone.now())
