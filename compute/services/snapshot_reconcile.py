"""Reconciliation of snapshots and backups: what a hypervisor lists against our rows.

A snapshot (or backup) we hold as available that the hypervisor no longer lists is marked
*missing* (and available again if it reappears); one the hypervisor lists that we have no row
for is *unknown*: reported on ``Hypervisor.drift["unknown_snapshots"]`` (``"unknown_backups"``)
and audited once. VMs with an operation in progress are skipped (the operation owns them), and
every write is guarded by ``updated_at < listed_at``, so a listing older than a write-back
never overwrites it. A pass that changes nothing costs the same few queries for any number of VMs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import models, transaction

import audit
from compute.choices import SnapshotState
from compute.models import Backup, Hypervisor, Snapshot


@dataclass(frozen=True)
class _Kind:
    model: type[models.Model]
    noun: str  # "snapshot" / "backup": audit kinds and drift keys

    @property
    def drift_key(self) -> str:
        return f"unknown_{self.noun}s"

    def label(self, row) -> str:
        return getattr(row, "name", "") or f"{self.noun} {row.pk}"


# Snapshot and backup states share these values (compute/choices.py).
AVAILABLE, MISSING, DELETED = SnapshotState.AVAILABLE, SnapshotState.MISSING, SnapshotState.DELETED
SNAPSHOTS, BACKUPS = _Kind(Snapshot, "snapshot"), _Kind(Backup, "backup")


def snapshot_reconcile(*, hypervisor: Hypervisor, listings: dict[int, list[str]], listed_at: datetime) -> dict:
    """Apply ``{vm_id: [refs the hypervisor lists]}`` (VMs whose listing failed are left out).
    Returns the names marked missing and found again, and ``{backend_id: [unknown refs]}``.
    Reads first; writes (in one transaction) only when something changed."""
    return _reconcile(SNAPSHOTS, hypervisor, listings, listed_at)


def backup_reconcile(*, hypervisor: Hypervisor, listings: dict[int, list[str]], listed_at: datetime) -> dict:
    """``snapshot_reconcile`` for backups: ``{vm_id: [backup refs in backup storage]}``."""
    return _reconcile(BACKUPS, hypervisor, listings, listed_at)


def _reconcile(kind: _Kind, hypervisor: Hypervisor, listings: dict[int, list[str]], listed_at: datetime) -> dict:
    fields = ["id", "state", "backend_ref", "updated_at", "vm__id", "vm__backend_id", "vm__project_id"]
    if kind.model is Snapshot:
        fields.append("name")
    rows = list(
        kind.model.objects.filter(vm_id__in=listings.keys(), vm__task_state__isnull=True)
        .exclude(state=DELETED)
        .select_related("vm")
        .only(*fields)
    )
    ours: dict[int, set[str]] = {}
    gone, back = [], []
    for row in rows:
        ours.setdefault(row.vm_id, set()).add(row.backend_ref)
        listed = row.backend_ref in listings[row.vm_id]
        if row.updated_at >= listed_at:
            continue
        if row.state == AVAILABLE and not listed:
            gone.append(row)
        elif row.state == MISSING and listed:
            back.append(row)
    backend_ids = {row.vm_id: row.vm.backend_id for row in rows}
    unknown = {}
    for vm_id, refs in listings.items():
        extra = sorted(set(refs) - ours.get(vm_id, set()))
        if extra:
            unknown[backend_ids.get(vm_id) or str(vm_id)] = extra
    if gone or back or hypervisor.drift.get(kind.drift_key, {}) != unknown:
        _write(kind, hypervisor, gone, back, unknown, listed_at)
    return {"missing": [kind.label(r) for r in gone], "found": [kind.label(r) for r in back], "unknown": unknown}


@transaction.atomic
def _write(kind: _Kind, hypervisor: Hypervisor, gone: list, back: list, unknown: dict, listed_at: datetime) -> None:
    if gone:
        kind.model.objects.filter(pk__in=[r.pk for r in gone], state=AVAILABLE, updated_at__lt=listed_at).update(
            state=MISSING, missing_since=listed_at
        )
    if back:
        kind.model.objects.filter(pk__in=[r.pk for r in back], state=MISSING).update(
            state=AVAILABLE, missing_since=None
        )
    for row in gone:
        audit.record(
            actor="reconciler",
            action="drift.detected",
            target=row.vm,
            project=row.vm.project_id,
            details={
                "kind": f"{kind.noun}_missing",
                kind.noun: row.pk,
                "name": kind.label(row),
                "ref": row.backend_ref,
            },
        )
    _record_unknown(kind, hypervisor, unknown)


def _record_unknown(kind: _Kind, hypervisor: Hypervisor, unknown: dict[str, list[str]]) -> None:
    """Store the unknown ones on the hypervisor's drift; audit each new one once."""
    if hypervisor.drift.get(kind.drift_key, {}) == unknown:
        return
    hv = Hypervisor.objects.select_for_update(no_key=True, of=("self",)).get(pk=hypervisor.pk)
    previous = hv.drift.get(kind.drift_key, {})
    for backend_id, refs in sorted(unknown.items()):
        for ref in sorted(set(refs) - set(previous.get(backend_id, []))):
            audit.record(
                actor="reconciler",
                action="drift.detected",
                target=hv,
                details={"kind": f"unknown_{kind.noun}", "backend_id": backend_id, "ref": ref},
            )
    hv.drift = {**hv.drift, kind.drift_key: unknown}
    hv.save(update_fields=["drift"])
    hypervisor.drift = hv.drift
