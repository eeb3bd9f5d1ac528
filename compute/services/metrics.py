"""VM metrics: ingest one collection round, roll up, expire (docs/MONITORING.md).

``metrics_ingest`` takes a hypervisor's readings (plain dicts shaped like the
drivers' ``VMMetrics``; compute never imports workers), turns counters into
rates against each VM's cursor and writes, in one transaction, one sample row
per VM, the cursors and the exact monthly transfer. Rules for counters:

- a counter lower than last time restarted (reboot, new QEMU process): the
  bytes since the restart count (the ones before it were counted already);
  an uptime lower than last time means the same for every counter;
- readings further apart than ``MAX_GAP_ROUNDS`` intervals (the hypervisor
  did not answer, the worker was down) give no rates for that round: a gap in
  the graph, never a made-up average. Transfer still counts the bytes moved;
- a VM that is not running gets no sample (a gap) and its cursor forgets the
  counters, so its next start counts from zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Avg, Count, Max, Min, Sum
from django.utils import timezone

from ..choices import VM_LIVE_STATUSES
from ..models import VirtualMachine, VMMetricCursor, VMMetricRollup, VMMetricSample, VMTransfer

COUNTERS = (
    "cpu_time_ns",
    "disk_read_bytes",
    "disk_write_bytes",
    "disk_read_ops",
    "disk_write_ops",
    "net_rx_bytes",
    "net_tx_bytes",
)
RATE_COLUMNS = {  # column: (counter, factor)
    "disk_read_bps": ("disk_read_bytes", 1),
    "disk_write_bps": ("disk_write_bytes", 1),
    "disk_read_iops": ("disk_read_ops", 1),
    "disk_write_iops": ("disk_write_ops", 1),
    "net_rx_bps": ("net_rx_bytes", 8),
    "net_tx_bps": ("net_tx_bytes", 8),
}
VALUE_COLUMNS = ("cpu_pct", "mem_used", "mem_total", *RATE_COLUMNS)
MAX_GAP_ROUNDS = 3
STEPS = (300, 3600)
BATCH = 2000


def interval_seconds() -> int:
    return int(settings.VM_METRICS["INTERVAL_SECONDS"])


def month_of(moment: datetime):
    return timezone.localtime(moment, timezone.get_default_timezone()).date().replace(day=1)


@dataclass
class Rates:
    values: dict[str, float | None]
    rx_bytes: int = 0
    tx_bytes: int = 0


def _delta(current: int | None, previous: int | None, restarted: bool) -> int | None:
    """Counter increase since the previous reading; a counter that went down restarted from 0."""
    if current is None:
        return None
    if previous is None:
        return current if restarted else None
    if restarted or current < previous:
        return current
    return current - previous


def reading_rates(reading: dict[str, Any], cursor: dict[str, Any] | None, *, vcpus: int, interval: float) -> Rates:
    """Rates of one reading against the previous one (``cursor``: {"at", "counters"} or None)."""
    prev = (cursor or {}).get("counters") or {}
    dt = reading["at"] - cursor["at"] if cursor else None
    uptime, prev_uptime = reading.get("uptime_seconds"), prev.get("uptime_seconds")
    restarted = bool(cursor and not prev) or (uptime is not None and prev_uptime is not None and uptime < prev_uptime)
    deltas = {name: _delta(reading.get(name), prev.get(name), restarted) for name in COUNTERS}
    usable = dt is not None and 0 < dt <= MAX_GAP_ROUNDS * interval
    if usable and restarted and uptime is not None:
        span = min(dt, max(uptime, 1.0))
    else:
        span = dt
    values: dict[str, float | None] = dict.fromkeys(VALUE_COLUMNS)
    values["mem_used"] = reading.get("memory_used_bytes")
    values["mem_total"] = reading.get("memory_total_bytes")
    if reading.get("cpu_fraction") is not None:
        values["cpu_pct"] = min(100.0, max(0.0, reading["cpu_fraction"] * 100))
    elif usable and deltas["cpu_time_ns"] is not None:
        cpus = reading.get("vcpus") or vcpus or 1
        values["cpu_pct"] = min(100.0, max(0.0, deltas["cpu_time_ns"] / (span * 1e9 * cpus) * 100))
    if usable:
        for column, (counter, factor) in RATE_COLUMNS.items():
            if deltas[counter] is not None:
                values[column] = deltas[counter] * factor / span
    return Rates(values=values, rx_bytes=deltas["net_rx_bytes"] or 0, tx_bytes=deltas["net_tx_bytes"] or 0)


def _upsert_transfer(rows: list[tuple[int, Any, int, int, datetime]]) -> None:
    """Add to each (vm, month)'s bytes: one INSERT … ON CONFLICT per row, batched (PostgreSQL and SQLite)."""
    table = VMTransfer._meta.db_table
    sql = (
        f"INSERT INTO {table} (vm_id, month, rx_bytes, tx_bytes, updated_at) VALUES (%s, %s, %s, %s, %s)"
        f" ON CONFLICT (vm_id, month) DO UPDATE SET rx_bytes = {table}.rx_bytes + excluded.rx_bytes,"
        f" tx_bytes = {table}.tx_bytes + excluded.tx_bytes, updated_at = excluded.updated_at"
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


@transaction.atomic
def metrics_ingest(*, hypervisor_id: int, readings: list[dict[str, Any]]) -> dict[str, int]:
    """Store one round of a hypervisor's readings. Readings of guests we do not manage are ignored."""
    by_backend = {r["backend_id"]: r for r in readings}
    vms = {
        backend_id: (vm_id, vcpus)
        for vm_id, backend_id, vcpus in VirtualMachine.objects.filter(
            hypervisor_id=hypervisor_id, status__in=VM_LIVE_STATUSES
        )
        .exclude(backend_id="")
        .values_list("pk", "backend_id", "plan__vcpus")
        if backend_id in by_backend
    }
    cursors = {
        c.vm_id: {"at": c.at, "counters": c.counters}
        for c in VMMetricCursor.objects.filter(vm__hypervisor_id=hypervisor_id)
    }
    interval = interval_seconds()
    samples, new_cursors, transfer = [], [], []
    now = timezone.now()
    for backend_id, (vm_id, vcpus) in vms.items():
        reading = by_backend[backend_id]
        at = datetime.fromtimestamp(reading["at"], tz=UTC).replace(microsecond=0)
        if reading.get("power_state") != "running":
            new_cursors.append(VMMetricCursor(vm_id=vm_id, at=reading["at"], counters={}))
            continue
        rates = reading_rates(reading, cursors.get(vm_id), vcpus=vcpus, interval=interval)
        samples.append(VMMetricSample(vm_id=vm_id, at=at, **rates.values))
        counters = {name: reading.get(name) for name in (*COUNTERS, "uptime_seconds")}
        new_cursors.append(VMMetricCursor(vm_id=vm_id, at=reading["at"], counters=counters))
        if rates.rx_bytes or rates.tx_bytes:
            transfer.append((vm_id, month_of(at), rates.rx_bytes, rates.tx_bytes, now))
    VMMetricSample.objects.bulk_create(samples, batch_size=BATCH, ignore_conflicts=True)
    VMMetricCursor.objects.bulk_create(
        new_cursors, batch_size=BATCH, update_conflicts=True, unique_fields=["vm"], update_fields=["at", "counters"]
    )
    if transfer:
        _upsert_transfer(transfer)
    return {"readings": len(readings), "vms": len(vms), "samples": len(samples)}


def _floor(moment: datetime, step: int) -> datetime:
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % step, tz=UTC)


def _bucket_rows(step: int, start: datetime) -> list[VMMetricRollup]:
    """One tier's rows for the bucket starting at ``start``, aggregated by the database."""
    end = start + timedelta(seconds=step)
    if step == STEPS[0]:
        source = VMMetricSample.objects.filter(at__gte=start, at__lt=end)
        extra = {"top": Max("cpu_pct"), "n": Count("at")}
    else:
        source = VMMetricRollup.objects.filter(step=STEPS[0], at__gte=start, at__lt=end)
        extra = {"top": Max("cpu_max"), "n": Sum("samples")}
    rows = source.values("vm_id").annotate(**{f"avg_{c}": Avg(c) for c in VALUE_COLUMNS}, **extra)
    return [
        VMMetricRollup(
            vm_id=row["vm_id"],
            step=step,
            at=start,
            samples=min(row["n"] or 0, 32767),
            cpu_max=row["top"],
            **{c: row[f"avg_{c}"] for c in VALUE_COLUMNS},
        )
        for row in rows
    ]


def metrics_rollup(*, now: datetime | None = None, max_buckets: int = 288) -> dict[int, int]:
    """Roll every complete bucket since the last rolled one (5 min from raw, 1 h from 5 min).
    A bucket is complete one interval after it ends (late rounds land first). Re-running is harmless."""
    now = now or timezone.now()
    written = {}
    for step in STEPS:
        done = VMMetricRollup.objects.filter(step=step).aggregate(last=Max("at"))["last"]
        horizon = _floor(now - timedelta(seconds=interval_seconds() + 30), step)
        if done:
            start = done + timedelta(seconds=step)
        else:
            source = VMMetricSample.objects.all() if step == STEPS[0] else VMMetricRollup.objects.filter(step=STEPS[0])
            first = source.aggregate(first=Min("at"))["first"]
            if first is None:
                written[step] = 0
                continue
            start = _floor(first, step)
        start = max(start, _floor(now - timedelta(hours=settings.VM_METRICS["RAW_HOURS"]), step))
        count = 0
        for _ in range(max_buckets):
            if start + timedelta(seconds=step) > horizon:
                break
            with transaction.atomic():
                rows = _bucket_rows(step, start)
                VMMetricRollup.objects.bulk_create(rows, batch_size=BATCH, ignore_conflicts=True)
            count += len(rows)
            start += timedelta(seconds=step)
        written[step] = count
    return written


def metrics_expire(*, now: datetime | None = None) -> dict[str, int]:
    """Delete what each tier no longer keeps."""
    now = now or timezone.now()
    keep = settings.VM_METRICS
    raw, _ = VMMetricSample.objects.filter(at__lt=now - timedelta(hours=keep["RAW_HOURS"])).delete()
    five, _ = VMMetricRollup.objects.filter(step=300, at__lt=now - timedelta(days=keep["ROLLUP_5M_DAYS"])).delete()
    hour, _ = VMMetricRollup.objects.filter(step=3600, at__lt=now - timedelta(days=keep["ROLLUP_1H_DAYS"])).delete()
    return {"raw": raw, "5m": five, "1h": hour}
