"""Readings from nova's server diagnostics (microversion 2.48's standard shape; pure, no I/O).

Nova has no per-host or bulk metrics call: diagnostics are per server
(``GET /servers/{id}/diagnostics``, admin by default policy), so the driver makes
one listing plus one call per running server, within a time budget. Fields:
``cpu_details[].time`` (ns), ``memory_details`` (MiB), ``disk_details[]``
(``read_bytes``/``read_requests``/``write_bytes``/``write_requests``),
``nic_details[]`` (``rx_octets``/``tx_octets``, seen from the guest), ``uptime``.
"""

from __future__ import annotations

from typing import Any

from ..base import VMMetrics

MIB = 1024**2


def _total(items: list[dict[str, Any]] | None, key: str) -> int | None:
    values = [int(item[key]) for item in items or [] if item.get(key) is not None]
    return sum(values) if values else None


def reading(backend_id: str, power_state: str, diagnostics: Any, *, at: float) -> VMMetrics:
    memory = getattr(diagnostics, "memory_details", None) or {}
    disks = getattr(diagnostics, "disk_details", None)
    nics = getattr(diagnostics, "nic_details", None)
    uptime = getattr(diagnostics, "uptime", None)
    return VMMetrics(
        backend_id=backend_id,
        at=at,
        power_state=power_state,
        vcpus=getattr(diagnostics, "num_cpus", None),
        cpu_time_ns=_total(getattr(diagnostics, "cpu_details", None), "time"),
        memory_used_bytes=int(memory["used"]) * MIB if memory.get("used") is not None else None,
        memory_total_bytes=int(memory["maximum"]) * MIB if memory.get("maximum") is not None else None,
        disk_read_bytes=_total(disks, "read_bytes"),
        disk_write_bytes=_total(disks, "write_bytes"),
        disk_read_ops=_total(disks, "read_requests"),
        disk_write_ops=_total(disks, "write_requests"),
        net_rx_bytes=_total(nics, "rx_octets"),
        net_tx_bytes=_total(nics, "tx_octets"),
        uptime_seconds=float(uptime) if uptime is not None else None,
    )
