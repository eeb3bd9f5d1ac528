"""Readings from one ``cluster/resources?type=vm`` answer (pure; no I/O).

Proxmox reports, per guest: ``cpu`` (a rate: fraction of ``maxcpu`` over the last
few seconds), ``mem``/``maxmem`` (bytes), and counters since the guest started:
``diskread``/``diskwrite`` and ``netin`` (to the guest) / ``netout`` (from it), with
``uptime``. It has no disk operation counters in that listing (``rrddata`` has the
same byte rates per guest, one call each, so it is not used for collection).
"""

from __future__ import annotations

from typing import Any

from ..base import PowerState, VMMetrics
from .guests import Guest


def _int(item: dict[str, Any], key: str) -> int | None:
    value = item.get(key)
    return None if value is None else int(value)


def readings(items: list[dict[str, Any]], *, at: float) -> list[VMMetrics]:
    out = []
    for item in items:
        guest = Guest.from_resource(item)
        if guest.template:
            continue
        running = guest.power_state == PowerState.RUNNING
        cpu = item.get("cpu")
        out.append(
            VMMetrics(
                backend_id=str(guest.vmid),
                at=at,
                power_state=guest.power_state,
                vcpus=_int(item, "maxcpu"),
                cpu_fraction=float(cpu) if running and cpu is not None else None,
                memory_used_bytes=_int(item, "mem") if running else None,
                memory_total_bytes=_int(item, "maxmem"),
                disk_read_bytes=_int(item, "diskread") if running else None,
                disk_write_bytes=_int(item, "diskwrite") if running else None,
                net_rx_bytes=_int(item, "netin") if running else None,
                net_tx_bytes=_int(item, "netout") if running else None,
                uptime_seconds=float(item["uptime"]) if running and item.get("uptime") is not None else None,
            )
        )
    return out
