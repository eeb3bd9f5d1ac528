"""A Proxmox hypervisor's settings (``Hypervisor.connection``), parsed once and checked.

Connection keys (host, port, verify_ssl, ca_bundle, timeout) are read by the
client; these are the ones the driver uses. docs/PROXMOX.md lists them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..base import PermanentDriverError
from .client import Code


@dataclass(frozen=True)
class ProxmoxSettings:
    node: str = "auto"  # where new guests go: a node name, or "auto" (online node with the most free memory)
    clone_mode: str = "linked"  # linked (fast, needs a template) or full (independent copy)
    storage: str | None = None  # full clones and OS-template containers put their disks here
    pool: str | None = None  # resource pool new guests join
    bridge: str | None = None  # set net0 onto this bridge (else the template's)
    ipconfig: str = "ip=dhcp"  # QEMU ipconfig0 / the LXC net0 ip part
    ci_user: str | None = None  # cloud-init user (else the template's)
    hard_stop_after_seconds: int = 120  # graceful shutdown waits this long, then powers off; 0 never forces
    shutdown_timeout_seconds: int = 300  # how long a shutdown may take when nothing forces it
    poll_seconds: float = 2.0  # hint to the engine between polls
    step_retry_seconds: float = 2.0  # first backoff before resubmitting a step whose task failed transiently
    ha_timeout_seconds: float = 300.0  # how long an HA-managed guest may take to reach the requested state

    @classmethod
    def from_config(cls, name: str, values: dict[str, Any]) -> ProxmoxSettings:
        try:
            settings = cls(
                node=str(values.get("node") or "auto"),
                clone_mode=str(values.get("clone_mode") or "linked"),
                storage=values.get("storage") or None,
                pool=values.get("pool") or None,
                bridge=values.get("bridge") or None,
                ipconfig=str(values.get("ipconfig") or "ip=dhcp"),
                ci_user=values.get("ci_user") or None,
                hard_stop_after_seconds=int(values.get("hard_stop_after_seconds", 120)),
                shutdown_timeout_seconds=int(values.get("shutdown_timeout_seconds", 300)),
                poll_seconds=float(values.get("poll_seconds", 2)),
                step_retry_seconds=float(values.get("step_retry_seconds", 2)),
                ha_timeout_seconds=float(values.get("ha_timeout_seconds", 300)),
            )
        except (TypeError, ValueError) as exc:
            raise PermanentDriverError(f"{name}: invalid setting ({exc}).", code=Code.MISCONFIGURED) from exc
        if settings.clone_mode not in ("linked", "full"):
            raise PermanentDriverError(f"{name}: clone_mode must be linked or full.", code=Code.MISCONFIGURED)
        return settings

    def shutdown_policy(self, hard_stop_after: int | None) -> dict[str, Any]:
        """The shutdown task's timeout, and whether a timed-out shutdown is followed by a power-off."""
        after = self.hard_stop_after_seconds if hard_stop_after is None else int(hard_stop_after)
        return {"timeout": after if after > 0 else self.shutdown_timeout_seconds, "force_after": after > 0}
