"""The engine's retry rule (compute/retry.py) as a table: retry later, out of attempts, or
past its deadline (a create's is the build timeout, other actions' DEADLINE_SECONDS, a
hypervisor's connection["deadlines"] overrides); and the backoff between attempts."""

from datetime import timedelta

import pytest
from django.utils import timezone

from compute.choices import Action
from compute.models import Hypervisor, Operation
from compute.retry import Verdict, backoff_seconds, retry_verdict

TIMEOUT = 600

RULE = [
    # action, attempts used, of max, seconds since it started (None: never claimed), verdict
    (Action.START, 1, 5, 10, Verdict.RETRY),
    (Action.START, 4, 5, 10, Verdict.RETRY),
    (Action.START, 5, 5, 10, Verdict.OUT_OF_ATTEMPTS),
    (Action.START, 6, 5, 10, Verdict.OUT_OF_ATTEMPTS),
    (Action.DELETE, 7, 8, 10, Verdict.RETRY),
    (Action.DELETE, 8, 8, 10, Verdict.OUT_OF_ATTEMPTS),
    (Action.STOP, 1, 5, 590, Verdict.RETRY),  # start/stop/reboot: 10 minutes
    (Action.STOP, 1, 5, 610, Verdict.OVERDUE),
    (Action.REBOOT, 5, 5, 610, Verdict.OVERDUE),
    (Action.DELETE, 1, 8, 890, Verdict.RETRY),  # delete: 15 minutes
    (Action.DELETE, 1, 8, 910, Verdict.OVERDUE),
    ("some_new_action", 1, 5, 1790, Verdict.RETRY),  # an action not in the table: the default, 30 minutes
    ("some_new_action", 1, 5, 1810, Verdict.OVERDUE),
    (Action.CREATE, 1, 5, 10, Verdict.RETRY),
    (Action.CREATE, 1, 5, None, Verdict.RETRY),
    (Action.CREATE, 5, 5, 10, Verdict.OUT_OF_ATTEMPTS),
    (Action.CREATE, 1, 5, TIMEOUT + 60, Verdict.OVERDUE),
    (Action.CREATE, 5, 5, TIMEOUT + 60, Verdict.OVERDUE),  # the timeout is the clearer reason
]


@pytest.mark.parametrize("action, attempts, max_attempts, running_for, verdict", RULE)
def test_retry_verdict(action, attempts, max_attempts, running_for, verdict):
    started = None if running_for is None else timezone.now() - timedelta(seconds=running_for)
    operation = Operation(
        action=action,
        attempts=attempts,
        max_attempts=max_attempts,
        started_at=started,
        hypervisor=Hypervisor(build_timeout_seconds=TIMEOUT),
    )
    assert retry_verdict(operation=operation) == verdict


@pytest.mark.parametrize("running_for, verdict", [(50, Verdict.RETRY), (70, Verdict.OVERDUE)])
def test_a_hypervisor_sets_its_own_deadline_per_action(running_for, verdict):
    operation = Operation(
        action=Action.START,
        attempts=1,
        max_attempts=5,
        started_at=timezone.now() - timedelta(seconds=running_for),
        hypervisor=Hypervisor(build_timeout_seconds=TIMEOUT, connection={"deadlines": {"start": 60}}),
    )
    assert retry_verdict(operation=operation) == verdict


@pytest.mark.parametrize("attempt, base", [(0, 0.2), (1, 0.2), (2, 0.4), (3, 0.8), (4, 1.6), (5, 2.0), (30, 2.0)])
def test_backoff_doubles_from_the_base_up_to_the_cap_with_jitter(settings, attempt, base):
    settings.ENGINE = {**settings.ENGINE, "RETRY_BASE_SECONDS": 0.2, "RETRY_MAX_SECONDS": 2.0}
    delays = [backoff_seconds(attempt) for _ in range(200)]
    assert all(0.5 * base <= delay < 1.5 * base for delay in delays)
    assert max(delays) - min(delays) > 0  # jittered, so retries of many operations spread out
