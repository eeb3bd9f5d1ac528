"""Turning a VM's confirmed status timeline into charged seconds per hour slot.

Pure: no database. A status holds from its event's instant until the next
event. What is charged (DESIGN.md, docs/BILLING.md):

- ``active``: the running price; ``stopped``: the stopped price;
- ``building`` (create not confirmed), ``error`` and ``deleted``: nothing.
  ``error`` is never charged, whether the create failed or a later operation
  left the VM in doubt: charging resumes when a worker confirms ``active`` or
  ``stopped`` again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from .choices import CHARGED_STATUSES

HOUR = timedelta(hours=1)
_SLOT_US = 3_600_000_000


@dataclass(frozen=True)
class SlotUsage:
    hour_start: datetime
    running_seconds: int
    stopped_seconds: int


def _us(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def slot_usage(
    *, start: datetime, until: datetime, status: str, events: Iterable[tuple[datetime, str]]
) -> tuple[list[SlotUsage], str]:
    """Charged seconds per hour slot in ``[start, until)``.

    ``start`` and ``until`` are slot boundaries; ``status`` is the confirmed
    status in force at ``start``; ``events`` are ``(at, status)`` with
    ``start <= at < until``, in order. Returns the slots with any charged time
    (seconds rounded half up from microseconds, at most 3600 in all) and the status in force at
    ``until``.
    """
    per_slot: dict[int, list[int]] = {}

    def add(kind: str, begin: datetime, end: datetime) -> None:
        offset, remaining = _us(begin - start), _us(end - begin)
        while remaining > 0:
            index, within = divmod(offset, _SLOT_US)
            take = min(remaining, _SLOT_US - within)
            per_slot.setdefault(index, [0, 0])[0 if kind == "running" else 1] += take
            offset, remaining = offset + take, remaining - take

    current, since = status, start
    for at, new_status in [*events, (until, None)]:
        kind = CHARGED_STATUSES.get(current)
        if kind and at > since:
            add(kind, since, at)
        if new_status is not None:
            current, since = new_status, at
    slots = []
    for index in sorted(per_slot):
        running_us, stopped_us = per_slot[index]
        running = (running_us + 500_000) // 1_000_000
        stopped = (running_us + stopped_us + 500_000) // 1_000_000 - running  # never more than 3600 in all
        if running or stopped:
            slots.append(SlotUsage(start + index * HOUR, running, stopped))
    return slots, current
