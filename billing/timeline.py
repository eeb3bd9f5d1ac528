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


UNCHARGED = ""  # a status that is never charged: masks time outside a plan's segment


def plan_slot_usage(
    *, start: datetime, until: datetime, status: str, plan: int, events: Iterable[tuple[datetime, str, int | None]]
) -> tuple[list[tuple[int, SlotUsage]], str, int]:
    """``slot_usage`` split by the plan in force (a resize changes it at a confirmed instant).

    ``events`` are ``(at, status, plan_id)``; a plan of None leaves the plan unchanged. Each
    plan's segment is charged on its own, so an hour with a resize yields one slot per plan,
    the old plan's before the instant and the new plan's from it. Returns ``(plan_id, slot)``
    pairs, the status and the plan in force at ``until``.
    """
    events = list(events)
    segments: list[tuple[datetime, int, str]] = [(start, plan, status)]  # (from, plan, status in force then)
    current_status, current_plan = status, plan
    for at, new_status, new_plan in events:
        if new_plan is not None and new_plan != current_plan:
            segments.append((at, new_plan, current_status))
            current_plan = new_plan
        current_status = new_status
    result: list[tuple[int, SlotUsage]] = []
    for index, (begins, segment_plan, status_then) in enumerate(segments):
        ends = segments[index + 1][0] if index + 1 < len(segments) else until
        if ends <= begins:
            continue
        own = [(at, st) for at, st, _ in events if begins <= at < ends]
        if begins > start:
            own.insert(0, (begins, status_then))
        if ends < until:
            own.append((ends, UNCHARGED))
        slots, _ = slot_usage(start=start, until=until, status=status if begins == start else UNCHARGED, events=own)
        result.extend((segment_plan, slot) for slot in slots)
    return result, current_status, current_plan
