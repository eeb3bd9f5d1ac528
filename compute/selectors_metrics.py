"""Reads of VM metrics: chart series from the right tier, transfer of the month.

``metric_series`` picks the finest tier that still holds ``start`` (raw for
``METRICS_RAW_HOURS``, 5-minute rollups for ``METRICS_5M_DAYS``, hourly after) and
is not finer than the asked step, averages into the step when it is coarser, and
answers column-wise (the shape chart libraries take). A missing round becomes
one ``null`` point, so a chart draws a gap instead of a line across it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from .choices import VM_LIVE_STATUSES
from .models import VirtualMachine, VMMetricRollup, VMMetricSample, VMTransfer
from .services.metrics import interval_seconds, month_of

GB = 10**9
# name: [(column, label, unit)]
METRICS = {
    "cpu": [("cpu_pct", "CPU", "%")],
    "memory": [("mem_used", "Memory used", "B"), ("mem_total", "Memory", "B")],
    "disk": [("disk_read_bps", "Disk read", "B/s"), ("disk_write_bps", "Disk write", "B/s")],
    "iops": [("disk_read_iops", "Read IOPS", "ops/s"), ("disk_write_iops", "Write IOPS", "ops/s")],
    "network": [("net_rx_bps", "Network in", "bit/s"), ("net_tx_bps", "Network out", "bit/s")],
}
MAX_POINTS = 5000
DEFAULT_POINTS = 720


@dataclass(frozen=True)
class Tier:
    name: str
    step: int
    keeps: timedelta


def tiers() -> list[Tier]:
    keep = settings.VM_METRICS
    return [
        Tier("raw", interval_seconds(), timedelta(hours=keep["RAW_HOURS"])),
        Tier("5m", 300, timedelta(days=keep["ROLLUP_5M_DAYS"])),
        Tier("1h", 3600, timedelta(days=keep["ROLLUP_1H_DAYS"])),
    ]


def series_step(*, start: datetime, end: datetime, step: int | None) -> tuple[Tier, int]:
    """The tier to read and the step to answer in (``step`` None: about 720 points)."""
    now = timezone.now()
    wanted = step or max(1, int((end - start).total_seconds() // DEFAULT_POINTS))
    usable = [tier for tier in tiers() if start >= now - tier.keeps]
    tier = next((t for t in reversed(usable) if t.step <= wanted), usable[0] if usable else tiers()[-1])
    return tier, max(tier.step, tier.step * math.ceil(wanted / tier.step) if step is None else wanted)


def metric_series(*, vm: VirtualMachine, metrics: list[str], start: datetime, end: datetime, step: int | None) -> dict:
    tier, answer_step = series_step(start=start, end=end, step=step)
    columns = [column for name in metrics for column, _, _ in METRICS[name]]
    if tier.name == "raw":
        rows = VMMetricSample.objects.filter(vm=vm, at__gte=start, at__lt=end)
    else:
        rows = VMMetricRollup.objects.filter(vm=vm, step=tier.step, at__gte=start, at__lt=end)
    points = list(rows.order_by("at").values_list("at", *columns))  # at most a few thousand rows
    origin = int(start.timestamp())
    times, lists = _points(points, len(columns), origin, answer_step, averaged=answer_step != tier.step)
    values = dict(zip(columns, lists, strict=True))
    return {
        "vm": vm.pk,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "step": answer_step,
        "source": tier.name,
        "series": [
            {"key": column, "metric": name, "label": label, "unit": unit}
            for name in metrics
            for column, label, unit in METRICS[name]
        ],
        "t": times,
        "values": values,
    }


def _points(rows, width: int, origin: int, step: int, *, averaged: bool) -> tuple[list[int], list[list]]:
    """Column-wise points; ``averaged``: rows averaged into ``step`` buckets from ``origin``.
    A missing stretch longer than 1.5 steps gets one null point, so a chart draws a gap."""
    times: list[int] = []
    columns: list[list] = [[] for _ in range(width)]

    def add(at: int, row) -> None:
        if times and at - times[-1] > step * 1.5:
            times.append(times[-1] + step)
            for column in columns:
                column.append(None)
        times.append(at)
        for column, value in zip(columns, row, strict=True):
            column.append(None if value is None else round(value, 3))

    if not averaged:
        for at, *row in rows:
            add(int(at.timestamp()), row)
        return times, columns
    key, seen = None, None
    for at, *row in rows:
        bucket = origin + (int(at.timestamp()) - origin) // step * step
        if bucket != key:
            if key is not None:
                add(key, [sum(v) / len(v) if v else None for v in seen])
            key, seen = bucket, [[] for _ in range(width)]
        for values, value in zip(seen, row, strict=True):
            if value is not None:
                values.append(value)
    if key is not None:
        add(key, [sum(v) / len(v) if v else None for v in seen])
    return times, columns


@dataclass(frozen=True)
class TransferSummary:
    month: object  # date: first day
    rx_bytes: int
    tx_bytes: int
    included_bytes: int  # 0: the plan includes none
    projected_bytes: int  # at this pace by the month's end

    @property
    def total_bytes(self) -> int:
        return self.rx_bytes + self.tx_bytes

    @property
    def used_percent(self) -> float | None:
        return round(self.total_bytes / self.included_bytes * 100, 1) if self.included_bytes else None

    @property
    def over_bytes(self) -> int:
        return max(0, self.total_bytes - self.included_bytes) if self.included_bytes else self.total_bytes

    @property
    def projected_over_bytes(self) -> int:
        return max(0, self.projected_bytes - self.included_bytes) if self.included_bytes else self.projected_bytes


def month_bounds(month) -> tuple[datetime, datetime]:
    tz = timezone.get_default_timezone()  # billing months, whatever zone the page shows
    start = datetime(month.year, month.month, 1, tzinfo=tz)
    end = datetime(month.year + (month.month == 12), month.month % 12 + 1, 1, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def vm_transfer_month(*, vm: VirtualMachine, now: datetime | None = None) -> TransferSummary:
    """This month's transfer of a VM against its plan, and where the month's pace leads."""
    now = now or timezone.now()
    month = month_of(now)
    row = VMTransfer.objects.filter(vm=vm, month=month).values_list("rx_bytes", "tx_bytes").first() or (0, 0)
    start, end = month_bounds(month)
    since = max(start, vm.created_at) if vm.created_at else start
    elapsed = max((now - since).total_seconds(), 3600.0)
    projected = int(sum(row) * (end - since).total_seconds() / elapsed)
    return TransferSummary(
        month=month,
        rx_bytes=row[0],
        tx_bytes=row[1],
        included_bytes=vm.plan.included_transfer_gb * GB,
        projected_bytes=max(projected, sum(row)),
    )


@dataclass(frozen=True)
class LatestSamples:
    """For /metrics: up to ``limit`` live VMs (oldest ids, a stable set) with their labels, latest
    values (within two intervals) and this month's transfer; ``omitted`` live VMs left out."""

    labels: dict[int, tuple[str, str, str]]  # vm id: (name, project slug, hypervisor name)
    values: dict[int, list]  # vm id: values of ``columns`` in order
    transfer: dict[int, int]  # vm id: bytes in + out this month
    omitted: int


def vm_latest_samples(*, columns: list[str], limit: int, now: datetime) -> LatestSamples:
    """Four queries at most, whatever the number of VMs."""
    live = VirtualMachine.objects.filter(status__in=VM_LIVE_STATUSES)
    vms = list(live.order_by("pk").values_list("pk", "name", "project__slug", "hypervisor__name")[:limit])
    omitted = live.count() - len(vms) if len(vms) == limit else 0
    labels = {pk: (name, project, hypervisor) for pk, name, project, hypervisor in vms}
    if not labels:
        return LatestSamples(labels={}, values={}, transfer={}, omitted=omitted)
    since = now - timedelta(seconds=2 * interval_seconds())
    values: dict[int, list] = {}
    rows = VMMetricSample.objects.filter(vm_id__in=labels, at__gte=since).order_by("vm_id", "-at")
    for vm_id, *row in rows.values_list("vm_id", *columns):
        values.setdefault(vm_id, row)
    month = VMTransfer.objects.filter(vm_id__in=labels, month=month_of(now))
    transfer = {vm_id: rx + tx for vm_id, rx, tx in month.values_list("vm_id", "rx_bytes", "tx_bytes")}
    return LatestSamples(labels=labels, values=values, transfer=transfer, omitted=omitted)
