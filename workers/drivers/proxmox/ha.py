"""Proxmox HA: an HA-managed guest's power changes happen later, in the HA manager.

For a guest under HA (``ha-manager add vm:100``) Proxmox answers start, stop
and shutdown with an ``hastart`` / ``hastop`` task that only records the
request (``ha-manager set vm:100 --state started``) and ends OK at once; the
cluster resource manager then has the node's local resource manager start or
stop the guest, seconds (or, on a busy or fenced node, minutes) later. So when
such a task ends, the action is not done: the driver follows the guest in
``cluster/resources`` (its ``status``, and ``hastate``, the HA service state)
until it is in the wanted power state, HA reports ``error``, or
``ha_timeout_seconds`` pass. Pure functions over the handle's data; no I/O.
"""

from __future__ import annotations

import time
from typing import Any

from ..base import PermanentDriverError
from .guests import Guest

# The task types Proxmox forks for an HA-managed guest, and the guest status each asks for.
REQUEST_TASKS = {"hastart": "running", "hastop": "stopped"}
# HA service states in which the manager has given up on the guest until an operator acts.
GAVE_UP = {"error"}
WAIT_STEP = "ha_wait"


def requested_status(upid: str) -> str | None:
    """The guest status an HA request task asks for, or None when the task is not one.

    A UPID is ``UPID:node:pid:pstart:starttime:type:id:user:``."""
    parts = upid.split(":")
    return REQUEST_TASKS.get(parts[5]) if len(parts) > 6 else None


def follow(data: dict[str, Any], want: str, timeout: float) -> dict[str, Any]:
    """The handle's data once the HA request task ended: wait for ``want`` before the next step."""
    return dict(data, steps=[WAIT_STEP, *data["steps"][1:]], ha_want=want, ha_deadline=time.time() + timeout)


def reached(guest: Guest | None, data: dict[str, Any], *, vmid: str, now: float) -> bool:
    """True once the guest is in the wanted status; raises when HA gave up or the wait timed out."""
    want = data["ha_want"]
    if guest is None:
        if want == "stopped":
            return True  # removed from the cluster meanwhile: it is certainly not running
        raise PermanentDriverError(f"Guest {vmid} vanished while Proxmox HA was to start it.", code="not_found")
    if guest.status == want:
        return True
    verb = "start" if want == "running" else "stop"
    if guest.hastate in GAVE_UP:
        raise PermanentDriverError(
            f"Proxmox HA could not {verb} guest {vmid}: its HA state is {guest.hastate!r} "
            f"(see `ha-manager status`; clear it with `ha-manager set vm:{vmid} --state disabled`).",
            code="ha_error",
        )
    if now >= data["ha_deadline"]:
        raise PermanentDriverError(
            f"Proxmox HA did not {verb} guest {vmid} in time: it is {guest.status}, "
            f"HA state {guest.hastate or 'unknown'!r}.",
            code="ha_timeout",
        )
    return False
