"""Readings from one ``getAllDomainStats`` answer (pure; no I/O).

The groups asked for: state, total CPU time (``cpu.time``, ns), balloon (KiB:
``balloon.current``, and with the guest's balloon driver ``balloon.available`` /
``balloon.usable``; otherwise the QEMU process' resident size ``balloon.rss``),
interfaces (``net.<i>.rx.bytes``/``tx.bytes``, seen from the guest) and block
devices (``block.<i>.rd.bytes``/``rd.reqs``/``wr.bytes``/``wr.reqs``). Counters
live as long as the QEMU process: a new process (stop/start) restarts them,
which the collector sees as a counter going down.
"""

from __future__ import annotations

from typing import Any

import libvirt

from ..base import PowerState, VMMetrics

KIB = 1024
STATS = (
    libvirt.VIR_DOMAIN_STATS_STATE
    | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
    | libvirt.VIR_DOMAIN_STATS_BALLOON
    | libvirt.VIR_DOMAIN_STATS_VCPU
    | libvirt.VIR_DOMAIN_STATS_INTERFACE
    | libvirt.VIR_DOMAIN_STATS_BLOCK
)


def _sum(values: dict[str, Any], group: str, field: str) -> int | None:
    count = values.get(f"{group}.count")
    if count is None:
        return None
    parts = [values.get(f"{group}.{i}.{field}") for i in range(int(count))]
    parts = [int(p) for p in parts if p is not None]
    return sum(parts) if parts else (0 if int(count) == 0 else None)


def _memory_used(values: dict[str, Any], total: int | None) -> int | None:
    """What the guest uses (balloon driver stats), else the QEMU process' resident size
    capped at the guest's memory (RSS includes QEMU's own overhead)."""
    available, usable = values.get("balloon.available"), values.get("balloon.usable")
    if available is not None and usable is not None:
        return (int(available) - int(usable)) * KIB
    rss = values.get("balloon.rss")
    if rss is None:
        return None
    return min(int(rss) * KIB, total) if total else int(rss) * KIB


def reading(backend_id: str, power_state: str, values: dict[str, Any], *, at: float) -> VMMetrics:
    if power_state != PowerState.RUNNING:
        return VMMetrics(backend_id=backend_id, at=at, power_state=power_state)
    total = values.get("balloon.current") or values.get("balloon.maximum")
    total = int(total) * KIB if total else None
    return VMMetrics(
        backend_id=backend_id,
        at=at,
        power_state=power_state,
        vcpus=int(values["vcpu.current"]) if values.get("vcpu.current") is not None else None,
        cpu_time_ns=int(values["cpu.time"]) if values.get("cpu.time") is not None else None,
        memory_used_bytes=_memory_used(values, total),
        memory_total_bytes=total,
        disk_read_bytes=_sum(values, "block", "rd.bytes"),
        disk_write_bytes=_sum(values, "block", "wr.bytes"),
        disk_read_ops=_sum(values, "block", "rd.reqs"),
        disk_write_ops=_sum(values, "block", "wr.reqs"),
        net_rx_bytes=_sum(values, "net", "rx.bytes"),
        net_tx_bytes=_sum(values, "net", "tx.bytes"),
    )
