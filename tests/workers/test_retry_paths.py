"""Both engine paths that can try an operation again ask the one retry rule (compute/retry.py):
a transient driver error (workers/engine.py) and the reaper. The engine is driven directly
against the simulator; no worker serves the queue, so nothing runs behind the test's back."""

from datetime import timedelta

import pytest
from django.utils import timezone

from compute import services
from compute.choices import OperationState, VMStatus
from compute.models import Operation, VirtualMachine
from workers import engine


@pytest.fixture
def create_op(user, project, plan, image, simulator):
    """A pending create on a simulator whose first ``create`` calls fail transiently."""
    simulator.queue = "nobody-serves-this"
    simulator.build_timeout_seconds = 60
    simulator.connection.update(latency=0.2, transient_failures_first={"create": 10})
    simulator.save()

    def make(*, max_attempts=5, running_for=None):
        request = services.vm_request_create(
            user=user, project=project, plan=plan, image=image, hypervisor=simulator, name="vm-r"
        )
        op = Operation.objects.get(vm__request=request)
        started = None if running_for is None else timezone.now() - timedelta(seconds=running_for)
        Operation.objects.filter(pk=op.pk).update(max_attempts=max_attempts, started_at=started)
        return op

    return make


def test_a_transient_error_with_attempts_left_retries_later(create_op):
    op = create_op()
    assert engine.execute_operation(op.pk, worker="w1") == "retry"
    op.refresh_from_db()
    assert (op.state, op.attempts, op.claim_token) == (OperationState.PENDING, 1, None)
    assert op.next_attempt_at > timezone.now() and op.error_message.startswith("Attempt 1 of 5 failed:")


def test_a_transient_error_on_the_last_attempt_fails_it(create_op):
    op = create_op(max_attempts=1)
    assert engine.execute_operation(op.pk, worker="w1") == "retry"
    op.refresh_from_db()
    assert op.state == OperationState.FAILED
    assert op.error_message.startswith("Gave up after 1 attempts: Simulated transient failure")
    assert VirtualMachine.objects.get(pk=op.vm_id).status == VMStatus.ERROR


def test_a_transient_error_on_a_create_past_its_build_timeout_fails_it(create_op):
    op = create_op(running_for=120)
    engine.execute_operation(op.pk, worker="w1")
    op.refresh_from_db()
    assert (op.state, op.error_code) == (OperationState.FAILED, "build_timeout")
    assert op.error_message == "The build did not finish within 60 seconds. The hypervisor shows no such guest."


def _lose_worker(op):
    """Claim it, then let the lease run out as if the worker died."""
    assert services.operation_claim(operation_id=op.pk, worker="lost") is not None
    Operation.objects.filter(pk=op.pk).update(lease_until=timezone.now() - timedelta(seconds=1))


@pytest.mark.parametrize(
    "max_attempts, running_for, requeued, code, message",
    [
        (5, None, 1, None, None),
        (1, None, 0, "worker_lost", "Its worker was lost 1 times; giving up."),
        (5, 120, 0, "build_timeout", "The build did not finish within 60 seconds. The hypervisor shows no such guest."),
    ],
)
def test_the_reaper_asks_the_same_rule(create_op, max_attempts, running_for, requeued, code, message):
    op = create_op(max_attempts=max_attempts, running_for=running_for)
    _lose_worker(op)

    report = engine.reap_expired_operations()
    assert report == {"requeued": requeued, "failed": 1 - requeued, "settled": 0, "skipped": 0}

    op.refresh_from_db()
    if requeued:
        assert (op.state, op.claim_token) == (OperationState.PENDING, None)
    else:
        assert (op.state, op.error_code, op.error_message) == (OperationState.FAILED, code, message)
