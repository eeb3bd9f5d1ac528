"""The operation engine's retry rule: try again later, or give up.

One predicate, ``retry_verdict``, decides for every path that could try an
operation again: a transient driver error (workers/engine.py ``_transient``) and
a worker that stopped answering (the reaper). ``backoff_seconds`` says how long
to wait before the next attempt or the next poll. Pure: no writes; the services
in compute/services/operations.py carry out the decision.
"""

from __future__ import annotations

import random
from datetime import timedelta
from enum import StrEnum

from django.conf import settings
from django.utils import timezone

from compute.choices import Action
from compute.models import Operation


class Verdict(StrEnum):
    RETRY = "retry"  # back to pending; the next claim tries again (or resumes its handle)
    OUT_OF_ATTEMPTS = "out_of_attempts"  # max_attempts used up: fail it
    OVERDUE = "overdue"  # a create past its hypervisor's build timeout: fail it


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with jitter: base·2^(n-1), capped, ×[0.5, 1.5)."""
    engine = settings.ENGINE
    delay = min(engine["RETRY_MAX_SECONDS"], engine["RETRY_BASE_SECONDS"] * (2 ** max(0, attempt - 1)))
    return delay * (0.5 + random.random())


def operation_is_overdue(*, operation: Operation) -> bool:
    """A create running past its hypervisor's build timeout (it can no longer succeed)."""
    if operation.action != Action.CREATE or not operation.started_at:
        return False
    limit = timedelta(seconds=operation.hypervisor.build_timeout_seconds)
    return timezone.now() - operation.started_at > limit


def retry_verdict(*, operation: Operation) -> Verdict:
    """Whether a claimed operation whose attempt just ended without a result may be
    tried again. A create past its build timeout is never retried (it would fail at
    its next poll anyway); otherwise it retries while ``attempts < max_attempts``."""
    if operation_is_overdue(operation=operation):
        return Verdict.OVERDUE
    if operation.attempts >= operation.max_attempts:
        return Verdict.OUT_OF_ATTEMPTS
    return Verdict.RETRY


def build_timeout_message(operation: Operation) -> str:
    return f"The build did not finish within {operation.hypervisor.build_timeout_seconds} seconds."
