"""Nova servers as the driver sees them: states, our markers, flavors and key pairs."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from ..base import HypervisorVM, PermanentDriverError, PowerState
from .client import Code

KEY_METADATA = "cp_idempotency_key"  # server metadata carrying the create operation's key
PROJECT_METADATA = "cp_project"  # our project's slug, for people looking at the cloud
GONE_STATUSES = ("DELETED", "SOFT_DELETED")
# Nova's status (derived from vm_state and task_state) → power state; others fall back to power_state.
STATUS_POWER = {
    "ACTIVE": PowerState.RUNNING,
    "REBOOT": PowerState.RUNNING,
    "HARD_REBOOT": PowerState.RUNNING,
    "PASSWORD": PowerState.RUNNING,
    "RESCUE": PowerState.RUNNING,
    "MIGRATING": PowerState.RUNNING,
    "SHUTOFF": PowerState.STOPPED,
    "SHELVED": PowerState.STOPPED,
    "SHELVED_OFFLOADED": PowerState.STOPPED,
    "PAUSED": PowerState.PAUSED,
    "SUSPENDED": PowerState.PAUSED,
}
# OS-EXT-STS:power_state numbers (nova/compute/power_state.py).
POWER_STATE_NUMBERS = {1: PowerState.RUNNING, 3: PowerState.PAUSED, 4: PowerState.STOPPED, 7: PowerState.PAUSED}


def key_tag(idempotency_key: str) -> str:
    """The server tag lookups use (nova tags: at most 60 characters, no commas or slashes)."""
    return f"cp-{idempotency_key}"


def power_state(server: Any) -> str:
    status = str(server.status or "").upper()
    if status in STATUS_POWER:
        return STATUS_POWER[status]
    return POWER_STATE_NUMBERS.get(server.power_state, PowerState.UNKNOWN)


def is_gone(server: Any) -> bool:
    return server is None or str(server.status or "").upper() in GONE_STATUSES


def addresses(server: Any) -> tuple[str, ...]:
    """Floating (public) addresses first, then fixed ones, in nova's network order."""
    found: list[tuple[int, str]] = []
    for entries in (server.addresses or {}).values():
        for entry in entries or []:
            if entry.get("addr"):
                found.append((1 if entry.get("OS-EXT-IPS:type", "fixed") == "fixed" else 0, entry["addr"]))
    return tuple(addr for _, addr in sorted(found, key=lambda item: item[0]))


def to_vm(server: Any) -> HypervisorVM:
    metadata = server.metadata or {}
    return HypervisorVM(
        backend_id=server.id,
        name=server.name or "",
        power_state=power_state(server),
        idempotency_key=metadata.get(KEY_METADATA),
        ip_addresses=addresses(server),
        extra={"status": server.status, "task_state": server.task_state, "project_id": server.project_id},
    )


def fault_message(server: Any) -> str:
    fault = server.fault or {}
    message = str(fault.get("message") or "").strip()
    return message or "no fault reported"


def encode_user_data(user_data: str) -> str | None:
    return base64.b64encode(user_data.encode()).decode() if user_data else None


def keypair_name(public_key: str) -> str:
    """A stable key pair name for an OpenSSH public key: ``cp-`` and its SHA-256 fingerprint (hex)."""
    parts = public_key.strip().split()
    if len(parts) < 2:
        raise PermanentDriverError(
            "The SSH public key is not an OpenSSH key (type and base64 body).", code=Code.INVALID
        )
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        raise PermanentDriverError("The SSH public key's body is not base64.", code=Code.INVALID) from None
    return f"cp-{hashlib.sha256(blob).hexdigest()[:40]}"


def pick_flavor(flavors: list[Any], *, vcpus: int, memory_mib: int, disk_gib: int) -> Any | None:
    """The flavor with exactly the plan's size; public ones first, then by name."""
    matching = [f for f in flavors if (f.vcpus, f.ram, f.disk) == (vcpus, memory_mib, disk_gib)]
    matching.sort(key=lambda f: (not getattr(f, "is_public", True), f.name or ""))
    return matching[0] if matching else None
