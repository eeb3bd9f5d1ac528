"""Snapshot storage: metered per closed month in GiB-hours, charged and invoiced like hours.

When the operator sets ``snapshot_price_per_gib_hour`` (0 by default: nothing is recorded),
each closed month (plus ``METER_DELAY``) every VM whose snapshots existed in it gets one
``SnapshotStorageRecord`` (unique per VM and month: a re-run adds nothing): the sum over its
snapshots of the size the hypervisor reported (``compute.Snapshot.size_bytes``, in GiB of
2^30 bytes) times the hours of the month the snapshot existed. A snapshot exists from its
``created_at`` until the first of: its confirmed delete (``deleted_at``), reconciliation
finding it gone (``missing_since``, not billed while missing), the VM's deletion. Snapshots
whose hypervisor reports no size (libvirt's internal ones, Proxmox) are not billed.
Charging debits a project's uncharged records in one ``UsageCharge`` per month with the
wallet locked (bandwidth.py's ``records_charge_locked``); the invoice shows one line per VM
and month ("Snapshot storage of web-1, … GiB-hours").
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from django.db.models import Sum
from django.utils import timezone

from compute.models import Snapshot

from ..models import BillingSettings, InvoiceLine, SnapshotStorageRecord, UsageCharge, Wallet
from ..periods import month_of, month_start, next_month
from .bandwidth import record_line, records_charge_locked, records_charge_pending

GIB = 2**30
METER_DELAY = timedelta(minutes=10)
_PLACES = Decimal("0.001")
_AMOUNT = Decimal("0.000001")
logger = logging.getLogger(__name__)


def _hours(start: datetime, end: datetime) -> Decimal:
    return Decimal(max(0.0, (end - start).total_seconds())) / 3600


def snapshot_gib_hours(snapshot: Snapshot, begin: datetime, end: datetime) -> Decimal:
    """GiB-hours of one snapshot within [begin, end) (exact; rounded per record)."""
    if not snapshot.size_bytes:
        return Decimal(0)
    moments = (snapshot.deleted_at, snapshot.missing_since, snapshot.vm.deleted_at)
    lifetime_end = min([end, *(moment for moment in moments if moment)])
    return Decimal(snapshot.size_bytes) / GIB * _hours(max(begin, snapshot.created_at), lifetime_end)


def snapshot_storage_meter(
    *, settings: BillingSettings, now: datetime | None = None, project_id: int | None = None
) -> int:
    """Record every closed month's snapshot storage not recorded yet; returns how many records were made."""
    price = settings.snapshot_price_per_gib_hour
    if not price:
        return 0
    closed_before = month_of((now or timezone.now()) - METER_DELAY)
    snapshots = Snapshot.objects.filter(size_bytes__gt=0, created_at__lt=month_start(closed_before))
    if project_id is not None:
        snapshots = snapshots.filter(vm__project_id=project_id)
    totals: dict[tuple[int, object], Decimal] = defaultdict(Decimal)
    vms = {}
    for snapshot in snapshots.select_related("vm__plan"):
        ends = [moment for moment in (snapshot.deleted_at, snapshot.missing_since, snapshot.vm.deleted_at) if moment]
        stop = min(ends) if ends else None
        period = month_of(snapshot.created_at)
        while period < closed_before and (stop is None or month_start(period) < stop):
            begin, end = month_start(period), month_start(next_month(period))
            totals[(snapshot.vm_id, period)] += snapshot_gib_hours(snapshot, begin, end)
            vms[snapshot.vm_id] = snapshot.vm
            period = next_month(period)
    done = set(SnapshotStorageRecord.objects.filter(vm_id__in=list(vms)).values_list("vm_id", "period"))
    records = []
    for (vm_id, period), gib_hours in sorted(totals.items(), key=lambda item: (item[0][1], item[0][0])):
        gib_hours = gib_hours.quantize(_PLACES, rounding=ROUND_CEILING)
        if (vm_id, period) in done or gib_hours <= 0:
            continue
        vm = vms[vm_id]
        records.append(
            SnapshotStorageRecord(
                vm_id=vm_id,
                project_id=vm.project_id,
                plan=vm.plan,
                period=period,
                gib_hours=gib_hours,
                price_per_gib_hour=price,
                sac_code=vm.plan.sac_code,
                gst_rate=vm.plan.gst_rate,
                amount=(gib_hours * price).quantize(_AMOUNT),
            )
        )
    SnapshotStorageRecord.objects.bulk_create(records, ignore_conflicts=True)
    return len(records)


def snapshot_storage_charge_locked(
    *, wallet: Wallet, settings: BillingSettings, now: datetime | None = None
) -> list[UsageCharge]:
    """Meter and charge the closed months' snapshot storage of a wallet the caller has locked."""
    snapshot_storage_meter(settings=settings, now=now, project_id=wallet.project_id)
    return records_charge_locked(
        wallet=wallet,
        settings=settings,
        records=SnapshotStorageRecord.objects.filter(project_id=wallet.project_id, charge__isnull=True),
        describe=lambda period: f"Snapshot storage, {period:%B %Y}",
        kind="snapshots",
    )


def snapshot_storage_charge_pending(*, now: datetime | None = None) -> int:
    """Meter closed months and charge every project with uncharged snapshot storage, one transaction each."""
    return records_charge_pending(
        model=SnapshotStorageRecord,
        meter=snapshot_storage_meter,
        charge_locked=snapshot_storage_charge_locked,
        now=now,
        what="snapshot storage",
    )


def snapshot_storage_lines(charge_ids: list[int], regime: str, *, first_position: int) -> list[InvoiceLine]:
    """The invoice lines of the snapshot storage in these charges: one per VM, month, price and rate."""
    groups = (
        SnapshotStorageRecord.objects.filter(charge_id__in=charge_ids)
        .values("vm_id", "vm__name", "plan_id", "period", "price_per_gib_hour", "sac_code", "gst_rate")
        .annotate(quantity=Sum("gib_hours"))
        .order_by("vm__name", "vm_id", "period", "price_per_gib_hour", "gst_rate")
    )
    lines = []
    for group in groups:
        lines.append(
            record_line(
                position=first_position + len(lines),
                description=f"Snapshot storage of {group['vm__name']}, {group['period']:%B %Y}",
                group=group,
                quantity=group["quantity"],
                unit="GiB-h",
                rate=group["price_per_gib_hour"],
                regime=regime,
            )
        )
    return lines
