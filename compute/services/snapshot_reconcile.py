"""Reconciliation of snapshots: what a hypervisor lists against our Snapshot rows.

A snapshot we hold as available that the hypervisor no longer lists is marked *missing*
(and available again if it reappears); one the hypervisor lists that we have no row for is
*unknown*: reported on ``Hypervisor.drift["unknown_snapshots"]`` and audited once. VMs with
an operation in progress are skipped (the operation owns them), and every write is guarded
by ``updated_at < listed_at``, so a listing older than a write-back never overwrites it.
A pass that changes nothing costs the same few queries for any number of VMs.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

import audit
from compute.choices import SnapshotState
from compute.models import Hypervisor, Snapshot


def snapshot_reconcile(*, hypervisor: Hypervisor, listings: dict[int, list[str]], listed_at: datetime) -> dict:
    """Apply ``{vm_id: [refs the hypervisor lists]}`` (VMs whose listing failed are left out).
    Returns the names marked missing and found again, and ``{backend_id: [unknown refs]}``.
    Reads first; writes (in one transaction) only when something changed."""
    rows = list(
        Snapshot.objects.filter(vm_id__in=listings.keys(), vm__task_state__isnull=True)
        .exclude(state=SnapshotState.DELETED)
        .select_related("vm")
        .only("id", "name", "state", "backend_ref", "updated_at", "vm__id", "vm__backend_id", "vm__project_id")
    )
    ours: dict[int, set[str]] = {}
    gone, back = [], []
    for row in rows:
        ours.setdefault(row.vm_id, set()).add(row.backend_ref)
        listed = row.backend_ref in listings[row.vm_id]
        if row.updated_at >= listed_at:
            continue
        if row.state == SnapshotState.AVAILABLE and not listed:
            gone.append(row)
        elif row.state == SnapshotState.MISSING and listed:
            back.append(row)
    backend_ids = {row.vm_id: row.vm.backend_id for row in rows}
    unknown = {}
    for vm_id, refs in listings.items():
        extra = sorted(set(refs) - ours.get(vm_id, set()))
        if extra:
            unknown[backend_ids.get(vm_id) or str(vm_id)] = extra
    if gone or back or hypervisor.drift.get("unknown_snapshots", {}) != unknown:
        _write(hypervisor, gone, back, unknown, listed_at)
    return {"missing": [r.name for r in gone], "found": [r.name for r in back], "unknown": unknown}


@transaction.atomic
def _write(hypervisor: Hypervisor, gone: list, back: list, unknown: dict, listed_at: datetime) -> None:
    if gone:
        Snapshot.objects.filter(
            pk__in=[r.pk for r in gone], state=SnapshotState.AVAILABLE, updated_at__lt=listed_at
        ).update(state=SnapshotState.MISSING, missing_since=listed_at)
    if back:
        Snapshot.objects.filter(pk__in=[r.pk for r in back], state=SnapshotState.MISSING).update(
            state=SnapshotState.AVAILABLE, missing_since=None
        )
    for row in gone:
        audit.record(
            actor="reconciler",
            action="drift.detected",
            target=row.vm,
            project=row.vm.project_id,
            details={"kind": "snapshot_missing", "snapshot": row.pk, "name": row.name, "ref": row.backend_ref},
        )
    _record_unknown(hypervisor, unknown)


def _record_unknown(hypervisor: Hypervisor, unknown: dict[str, list[str]]) -> None:
    """Store the unknown snapshots on the hypervisor's drift; audit each new one once."""
    if hypervisor.drift.get("unknown_snapshots", {}) == unknown:
        return
    hv = Hypervisor.objects.select_for_update(no_key=True, of=("self",)).get(pk=hypervisor.pk)
    previous = hv.drift.get("unknown_snapshots", {})
    for backend_id, refs in sorted(unknown.items()):
        for ref in sorted(set(refs) - set(previous.get(backend_id, []))):
            audit.record(
                actor="reconciler",
                action="drift.detected",
                target=hv,
                details={"kind": "unknown_snapshot", "backend_id": backend_id, "ref": ref},
            )
    hv.drift = {**hv.drift, "unknown_snapshots": unknown}
    hv.save(update_fields=["drift"])
    hypervisor.drift = hv.drift
