"""Plausible moving metrics for simulated guests, the same in every process.

Each guest gets a steady character from its id (a base CPU load, a network and
disk rate) plus slow waves, so graphs move. Counters are the exact integrals of
the rates since the guest last booted (its last finished create, start or reboot),
so a restart resets them like a real hypervisor's. A test can pin a guest's CPU
load with ``SimulatorStore.set_load`` (e.g. to make an alert fire).
"""

from __future__ import annotations

import hashlib
import math

from ..base import PowerState, VMMetrics

PERIOD = 900.0  # seconds of one wave
OMEGA = 2 * math.pi / PERIOD
MIB = 1024**2


def _traits(backend_id: str) -> tuple[float, float, float, float]:
    """(phase, base CPU load, network bytes/s, disk bytes/s) derived from the id."""
    digest = hashlib.sha256(backend_id.encode()).digest()
    phase = digest[0] / 255 * 2 * math.pi
    cpu = 0.08 + digest[1] / 255 * 0.4
    net = 20_000 + digest[2] / 255 * 400_000
    disk = 50_000 + digest[3] / 255 * 2_000_000
    return phase, cpu, net, disk


def _counter(rate: float, booted: float, now: float, phase: float, swing: float = 0.5) -> int:
    """The integral from ``booted`` to ``now`` of rate·(1 + swing·sin(ωt + phase)), never decreasing."""
    elapsed = max(now - booted, 0.0)
    wave = (math.cos(OMEGA * booted + phase) - math.cos(OMEGA * now + phase)) / OMEGA
    return int(rate * (elapsed + swing * wave))


def reading(
    *, backend_id: str, power_state: str, vcpus: int, memory_mib: int, booted: float, now: float, load: float | None
) -> VMMetrics:
    if power_state != PowerState.RUNNING:
        return VMMetrics(backend_id=backend_id, at=now, power_state=power_state, vcpus=vcpus)
    phase, cpu, net, disk = _traits(backend_id)
    if load is None:
        load = min(1.0, max(0.0, cpu + 0.15 * math.sin(OMEGA * now + phase) + 0.05 * math.sin(OMEGA * 7 * now)))
    total = memory_mib * MIB
    return VMMetrics(
        backend_id=backend_id,
        at=now,
        power_state=power_state,
        vcpus=vcpus,
        cpu_fraction=load,
        memory_used_bytes=int(total * (0.35 + 0.1 * math.sin(OMEGA / 4 * now + phase))),
        memory_total_bytes=total,
        disk_read_bytes=_counter(disk, booted, now, phase),
        disk_write_bytes=_counter(disk / 2, booted, now, phase + 1),
        disk_read_ops=_counter(disk / 16384, booted, now, phase),
        disk_write_ops=_counter(disk / 32768, booted, now, phase + 1),
        net_rx_bytes=_counter(net, booted, now, phase + 2),
        net_tx_bytes=_counter(net * 1.5, booted, now, phase + 3),
        uptime_seconds=max(now - booted, 0.0),
    )
