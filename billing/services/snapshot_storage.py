"""Stored copies (snapshots, and backups: backup_storage.py): metered per closed month in
GiB-hours, charged and invoiced like hours.

When the operator sets the kind's price (``snapshot_price_per_gib_hour``,
``backup_price_per_gib_hour``; 0 by default: nothing is recorded), each closed month (plus
``METER_DELAY``) every VM whose copies existed in it gets one record (``SnapshotStorageRecord``,
``BackupStorageRecord``; unique per VM and month: a re-run adds nothing): the sum over its
copies of the size the hypervisor reported (``size_bytes``, in GiB of 2^30 bytes) times the
hours of the month the copy existed. A copy exists from its start (a snapshot's ``created_at``,
a backup's ``completed_at``) until the first of: its confirmed delete (``deleted_at``),
reconciliation finding it gone (``missing_since``, not billed while missing), the VM's
deletion. Copies whose hypervisor reports no size (libvirt's internal snapshots, Proxmox
snapshots, Proxmox backups taken before their size was reported) are not billed.
Charging debits a project's uncharged records in one ``UsageCharge`` per month with the
wallet locked (bandwidth.py's ``records_charge_locked``); the invoice shows one line per VM
and month ("Snapshot storage of web-1, … GiB-hours").
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from functools import partial

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


@dataclass(frozen=True)
class StorageKind:
    """What is stored (``source`` rows with ``size_bytes``, ``deleted_at``, ``missing_since``
    and ``vm``), from which moment (``start``), its record model, price setting and wording."""

    label: str  # "Snapshot storage"
    source: type
    start: str
    record: type
    price: str
    charge_kind: str


SNAPSHOTS = StorageKind(
    label="Snapshot storage",
    source=Snapshot,
    start="created_at",
    record=SnapshotStorageRecord,
    price="snapshot_price_per_gib_hour",
    charge_kind="snapshots",
)


def _hours(start: datetime, end: datetime) -> Decimal:
    return Decimal(max(0.0, (end - start).total_seconds())) / 3600


def _stop(copy) -> datetime | None:
    ends = [moment for moment in (copy.deleted_at, copy.missing_since, copy.vm.deleted_at) if moment]
    return min(ends) if ends else None


def copy_gib_hours(copy, begin: datetime, end: datetime, *, start: str = "created_at") -> Decimal:
    """GiB-hours of one stored copy within [begin, end) (exact; rounded per record)."""
    if not copy.size_bytes:
        return Decimal(0)
    lifetime_end = min(end, _stop(copy) or end)
    return Decimal(copy.size_bytes) / GIB * _hours(max(begin, getattr(copy, start)), lifetime_end)


def storage_meter(
    kind: StorageKind, *, settings: BillingSettings, now: datetime | None = None, project_id: int | None = None
) -> int:
    """Record every closed month's storage of this kind not recorded yet; returns how many records were made."""
    price = getattr(settings, kind.price)
    if not price:
        return 0
    closed_before = month_of((now or timezone.now()) - METER_DELAY)
    copies = kind.source.objects.filter(size_bytes__gt=0, **{f"{kind.start}__lt": month_start(closed_before)})
    if project_id is not None:
        copies = copies.filter(vm__project_id=project_id)
    totals: dict[tuple[int, object], Decimal] = defaultdict(Decimal)
    vms = {}
    for copy in copies.select_related("vm__plan"):
        stop = _stop(copy)
        period = month_of(getattr(copy, kind.start))
        while period < closed_before and (stop is None or month_start(period) < stop):
            begin, end = month_start(period), month_start(next_month(period))
            totals[(copy.vm_id, period)] += copy_gib_hours(copy, begin, end, start=kind.start)
            vms[copy.vm_id] = copy.vm
            period = next_month(period)
    done = set(kind.record.objects.filter(vm_id__in=list(vms)).values_list("vm_id", "period"))
    records = []
    for (vm_id, period), gib_hours in sorted(totals.items(), key=lambda item: (item[0][1], item[0][0])):
        gib_hours = gib_hours.quantize(_PLACES, rounding=ROUND_CEILING)
        if (vm_id, period) in done or gib_hours <= 0:
            continue
        vm = vms[vm_id]
        records.append(
            kind.record(
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
    kind.record.objects.bulk_create(records, ignore_conflicts=True)
    return len(records)


def storage_charge_locked(
    kind: StorageKind, *, wallet: Wallet, settings: BillingSettings, now: datetime | None = None
) -> list[UsageCharge]:
    """Meter and charge the closed months' storage of this kind of a wallet the caller has locked."""
    storage_meter(kind, settings=settings, now=now, project_id=wallet.project_id)
    return records_charge_locked(
        wallet=wallet,
        settings=settings,
        records=kind.record.objects.filter(project_id=wallet.project_id, charge__isnull=True),
        describe=lambda period: f"{kind.label}, {period:%B %Y}",
        kind=kind.charge_kind,
    )


def storage_charge_pending(kind: StorageKind, *, now: datetime | None = None) -> int:
    """Meter closed months and charge every project with uncharged storage of this kind, one transaction each."""
    return records_charge_pending(
        model=kind.record,
        meter=partial(storage_meter, kind),
        charge_locked=partial(storage_charge_locked, kind),
        now=now,
        what=kind.label.lower(),
    )


def storage_lines(kind: StorageKind, charge_ids: list[int], regime: str, *, first_position: int) -> list[InvoiceLine]:
    """The invoice lines of this kind's storage in these charges: one per VM, month, price and rate."""
    groups = (
        kind.record.objects.filter(charge_id__in=charge_ids)
        .values("vm_id", "vm__name", "plan_id", "period", "price_per_gib_hour", "sac_code", "gst_rate")
        .annotate(quantity=Sum("gib_hours"))
        .order_by("vm__name", "vm_id", "period", "price_per_gib_hour", "gst_rate")
    )
    lines = []
    for group in groups:
        lines.append(
            record_line(
                position=first_position + len(lines),
                description=f"{kind.label} of {group['vm__name']}, {group['period']:%B %Y}",
                group=group,
                quantity=group["quantity"],
                unit="GiB-h",
                rate=group["price_per_gib_hour"],
                regime=regime,
            )
        )
    return lines


snapshot_storage_meter = partial(storage_meter, SNAPSHOTS)
snapshot_storage_charge_locked = partial(storage_charge_locked, SNAPSHOTS)
snapshot_storage_charge_pending = partial(storage_charge_pending, SNAPSHOTS)
snapshot_storage_lines = partial(storage_lines, SNAPSHOTS)
