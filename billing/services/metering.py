"""Hourly metering from the VMs' confirmed status timeline (VMStatusEvent).

Each VM has a ``MeterCursor``: every hour slot before ``metered_until`` is
done. A run takes the open cursors in chunks under ``FOR UPDATE SKIP LOCKED``
(concurrent runs share the work; a crashed run's chunk rolls back), reads the
chunk's events in one query, inserts the hourly ``UsageRecord`` rows (unique
per VM and slot, conflicts ignored) and advances the cursors, in one
transaction per chunk. Metering the same hours again inserts nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Min, OuterRef, Subquery
from django.utils import timezone

from compute.models import ExtraIPHolding, Plan, VirtualMachine, VMStatusEvent

from ..choices import MeterStatus
from ..models import MeterCursor, UsageRecord
from ..periods import slot_floor
from ..timeline import plan_slot_usage

METER_DELAY = timedelta(minutes=5)  # write-backs in flight land before their hour is metered
_AMOUNT = Decimal("0.000001")


@dataclass
class MeterResult:
    vms: int = 0
    records: int = 0
    new_cursors: int = 0
    more: bool = False  # stopped at the deadline with VMs left


def meter_horizon(now: datetime | None = None) -> datetime:
    """The newest slot boundary that may be metered now."""
    return slot_floor((now or timezone.now()) - METER_DELAY)


def _status_before(vm_ids: list[int], moment: datetime) -> dict[int, str]:
    last = VMStatusEvent.objects.filter(vm=OuterRef("pk"), at__lt=moment).order_by("-at", "-id").values("status")[:1]
    rows = VirtualMachine.objects.filter(pk__in=vm_ids).annotate(status_then=Subquery(last))
    return {vm_id: status for vm_id, status in rows.values_list("pk", "status_then") if status}


def _open_new_cursors(starts_at: datetime | None) -> int:
    """A cursor for every VM with a confirmed event and none yet: it starts at
    the slot of its first event (or at ``metering_starts_at`` if later)."""
    firsts = list(
        VMStatusEvent.objects.filter(vm__in=VirtualMachine.objects.filter(meter_cursor__isnull=True))
        .values("vm_id", "vm__project_id", "vm__plan_id")
        .annotate(first=Min("at"))
    )
    if not firsts:
        return 0
    floor = slot_floor(starts_at) if starts_at else None
    late = [row["vm_id"] for row in firsts if floor and row["first"] < floor]
    before = _status_before(late, floor) if late else {}
    cursors = [
        MeterCursor(
            vm_id=row["vm_id"],
            project_id=row["vm__project_id"],
            metered_until=max(slot_floor(row["first"]), floor) if floor else slot_floor(row["first"]),
            status=before.get(row["vm_id"], MeterStatus.NONE),
            plan_id=row["vm__plan_id"],  # events carry their plan; this one holds only before the first
        )
        for row in firsts
    ]
    MeterCursor.objects.bulk_create(cursors, ignore_conflicts=True)
    return len(cursors)


def _meter_chunk(until: datetime, size: int) -> tuple[int, int]:
    cursors = list(
        MeterCursor.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(closed=False, metered_until__lt=until)
        .select_related("vm")
        .order_by("vm_id")[:size]
    )
    if not cursors:
        return 0, 0
    events: dict[int, list[tuple[datetime, str, int | None]]] = {}
    rows = VMStatusEvent.objects.filter(
        vm_id__in=[c.vm_id for c in cursors], at__gte=min(c.metered_until for c in cursors), at__lt=until
    ).order_by("vm_id", "at", "id")
    for vm_id, at, status, plan_id in rows.values_list("vm_id", "at", "status", "plan_id"):
        events.setdefault(vm_id, []).append((at, status, plan_id))
    plan_ids = {c.plan_id or c.vm.plan_id for c in cursors} | {e[2] for own in events.values() for e in own if e[2]}
    plans = Plan.objects.in_bulk(plan_ids)
    records = []
    for cursor in cursors:
        vm = cursor.vm
        own = [event for event in events.get(cursor.vm_id, ()) if event[0] >= cursor.metered_until]
        slots, cursor.status, cursor.plan_id = plan_slot_usage(
            start=cursor.metered_until,
            until=until,
            status=cursor.status,
            plan=cursor.plan_id or vm.plan_id,
            events=own,
        )
        for plan_id, slot in slots:
            plan = plans[plan_id]
            amount = (
                slot.running_seconds * plan.price_hourly_running + slot.stopped_seconds * plan.price_hourly_stopped
            ) / 3600
            records.append(
                UsageRecord(
                    vm_id=vm.pk,
                    project_id=vm.project_id,
                    plan_id=plan.pk,
                    hour_start=slot.hour_start,
                    running_seconds=slot.running_seconds,
                    stopped_seconds=slot.stopped_seconds,
                    price_running=plan.price_hourly_running,
                    price_stopped=plan.price_hourly_stopped,
                    sac_code=plan.sac_code,
                    gst_rate=plan.gst_rate,
                    amount=amount.quantize(_AMOUNT),
                )
            )
    UsageRecord.objects.bulk_create(records, ignore_conflicts=True, batch_size=2000)
    by_state: dict[tuple[str, int], list[int]] = {}
    for cursor in cursors:
        by_state.setdefault((cursor.status, cursor.plan_id), []).append(cursor.vm_id)
    for (status, plan_id), vm_ids in by_state.items():  # one UPDATE per final status and plan
        MeterCursor.objects.filter(vm_id__in=vm_ids).update(
            metered_until=until, status=status, plan_id=plan_id, closed=status == MeterStatus.DELETED
        )
    return len(cursors), len(records)


def _meter_extra_ips(until: datetime) -> int:
    """Additional IPs (plan add-on): every second a VM held one, per hour slot, at its plan's
    ``price_hourly_extra_ip``; one UsageRecord per holding and slot (item ``ip:<id>:<address>``,
    the seconds in ``running_seconds``). Each holding remembers how far it is metered."""
    holdings = list(
        ExtraIPHolding.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(metered_until__lt=until)
        .exclude(ended_at__lte=F("metered_until"))
        .select_related("vm", "vm__plan")
    )
    records = []
    for holding in holdings:
        begin, end = holding.metered_until, min(holding.ended_at or until, until)
        plan = holding.vm.plan
        while begin < end:
            slot = slot_floor(begin)
            stop = min(slot + timedelta(hours=1), end)
            seconds = round((stop - begin).total_seconds())
            if seconds:
                records.append(
                    UsageRecord(
                        vm_id=holding.vm_id,
                        project_id=holding.vm.project_id,
                        plan_id=plan.pk,
                        item=f"ip:{holding.pk}:{holding.address}",
                        hour_start=slot,
                        running_seconds=seconds,
                        stopped_seconds=0,
                        price_running=plan.price_hourly_extra_ip,
                        price_stopped=Decimal("0"),
                        sac_code=plan.sac_code,
                        gst_rate=plan.gst_rate,
                        amount=(seconds * plan.price_hourly_extra_ip / 3600).quantize(_AMOUNT),
                    )
                )
            begin = stop
        holding.metered_until = max(end, holding.metered_until)
    UsageRecord.objects.bulk_create(records, ignore_conflicts=True, batch_size=2000)
    for holding in holdings:
        ExtraIPHolding.objects.filter(pk=holding.pk).update(metered_until=holding.metered_until)
    return len(records)


def usage_meter(
    *,
    until: datetime | None = None,
    chunk: int = 1000,
    starts_at: datetime | None = None,
    deadline: float | None = None,
) -> MeterResult:
    """Meter every VM up to ``until`` (a slot boundary; default: the newest
    complete slot). ``starts_at``: nothing before it is metered (operators
    introducing billing into a running installation set it in settings).
    Stops between chunks at ``deadline`` (time.monotonic()), saying ``more``."""
    until = slot_floor(until) if until else meter_horizon()
    result = MeterResult(new_cursors=_open_new_cursors(starts_at))
    while True:
        if deadline is not None and time.monotonic() > deadline:
            result.more = MeterCursor.objects.filter(closed=False, metered_until__lt=until).exists()
            return result
        with transaction.atomic():
            vms, records = _meter_chunk(until, chunk)
        if not vms:
            with transaction.atomic():
                result.records += _meter_extra_ips(until)
            return result
        result.vms += vms
        result.records += records
