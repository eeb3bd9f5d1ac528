"""The operation engine's retry rule: try again later, or give up.

One predicate, ``retry_verdict``, decides for every path that could try an
operation again: a transient driver error (workers/engine.py ``_transient``) and
a worker that stopped answering (the reaper). ``backoff_seconds`` says how long
to wait before the next attempt or the next poll. Every operation has a deadline
(``deadline_seconds``): a create its hypervisor's build timeout, any other action
``DEADLINE_SECONDS[action]`` (``DEFAULT_DEADLINE_SECONDS`` for an action not in the
table), which a hypervisor overrides with ``connection["deadlines"] = {action: seconds}``.
Past it, the engine settles the operation from what the hypervisor shows
(workers/engine.py ``_settle_overdue``). Pure: no writes; the services in
compute/services/operations.py carry out the decision.
"""

from __future__ import annotations

import random
from datetime import timedelta
from enum import StrEnum

from django.conf import settings
from django.utils import timezone

from compute.choices import DEADLINE_SECONDS, DEFAULT_DEADLINE_SECONDS, Action
from compute.models import Operation


class Verdict(StrEnum):
    RETRY = "retry"  # back to pending; the next claim tries again (or resumes its handle)
    OUT_OF_ATTEMPTS = "out_of_attempts"  # max_attempts used up: fail it
    OVERDUE = "overdue"  # past its deadline: settle it from what the hypervisor shows


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with jitter: base·2^(n-1), capped, ×[0.5, 1.5)."""
    engine = settings.ENGINE
    delay = min(engine["RETRY_MAX_SECONDS"], engine["RETRY_BASE_SECONDS"] * (2 ** max(0, attempt - 1)))
    return delay * (0.5 + random.random())


def deadline_seconds(*, operation: Operation) -> int:
    """How long an operation may run, counted from its first claim."""
    if operation.action == Action.CREATE:
        return operation.hypervisor.build_timeout_seconds
    overrides = (operation.hypervisor.connection or {}).get("deadlines") or {}
    return int(overrides.get(operation.action) or DEADLINE_SECONDS.get(operation.action, DEFAULT_DEADLINE_SECONDS))


def operation_is_overdue(*, operation: Operation) -> bool:
    """Running past its deadline: it is settled, never polled or retried again."""
    if not operation.started_at:
        return False
    return timezone.now() - operation.started_at > timedelta(seconds=deadline_seconds(operation=operation))


def retry_verdict(*, operation: Operation) -> Verdict:
    """Whether a claimed operation whose attempt just ended without a result may be
    tried again. One past its deadline is never retried (it would be settled at its
    next poll anyway); otherwise it retries while ``attempts < max_attempts``."""
    if operation_is_overdue(operation=operation):
        return Verdict.OVERDUE
    if operation.attempts >= operation.max_attempts:
        return Verdict.OUT_OF_ATTEMPTS
    return Verdict.RETRY


def deadline_message(operation: Operation) -> str:
    if operation.action == Action.CREATE:
        return f"The build did not finish within {operation.hypervisor.build_timeout_seconds} seconds."
    seconds = deadline_seconds(operation=operation)
    return f"The {operation.action} did not finish within its deadline of {seconds} seconds."


def deadline_code(operation: Operation) -> str:
    return "build_timeout" if operation.action == Action.CREATE else "deadline"
