"""SIGTERM (what systemd sends on stop) lets the running task finish; nothing is lost."""

import time

from tests.deploy.conftest import wait_until


def _entries(broker, marker):
    return [e.decode() for e in broker.lrange(f"deploy-probe:{marker}", 0, -1)]


def test_sigterm_mid_task_finishes_it_and_hands_the_rest_back(deploy_worker, broker, marker):
    from controlplane.celery import app

    queue = f"deploy-slow-{marker}"
    # Given a one-slot worker running a 4 s task, with a second task queued behind it
    worker = deploy_worker(queues=queue, name=f"slow-{marker}", concurrency=1)
    first = app.send_task("deploy_probe_slow", args=[marker, 4], queue=queue)
    second = app.send_task("deploy_probe_slow", args=[marker, 0.5], queue=queue)
    wait_until(lambda: f"started|{first.id}" in "".join(_entries(broker, marker)), 30, message="first task start")

    # When the worker's process group gets SIGTERM in the middle of the first task
    sent_at = time.monotonic()
    worker.stop(timeout=60)
    stop_seconds = time.monotonic() - sent_at

    # Then the worker exited cleanly only after the running task finished
    entries = _entries(broker, marker)
    assert worker.proc.returncode == 0, worker.tail()
    assert [e.split("|")[0] for e in entries if first.id in e] == ["started", "finished"], entries
    assert "Warm shutdown" in worker.tail(200)
    assert 2 < stop_seconds < 30, stop_seconds
    assert not any(second.id in e for e in entries), "the queued task must not start during shutdown"

    # And the task it had not started is still in the broker: a new worker runs it, once
    deploy_worker(queues=queue, name=f"slow2-{marker}", concurrency=1)
    wait_until(lambda: f"finished|{second.id}" in "".join(_entries(broker, marker)), 30, message="second task")
    entries = _entries(broker, marker)
    assert sum(e.startswith("started|" + second.id) for e in entries) == 1, entries
    assert sum(e.startswith("started|" + first.id) for e in entries) == 1, entries


def test_sigterm_between_submit_and_poll_hands_the_operation_to_the_next_worker(
    deploy_worker, marker, transactional_db, user, project, plan, image, tmp_path
):
    from compute.choices import OperationState
    from compute.models import Operation
    from tests.deploy.conftest import request_vm, simulator_on_queue
    from tests.fixtures.compute import wait_operation
    from workers.drivers.simulator import store_for

    # Given a hypervisor that takes 4 s to build, served by one worker
    hv = simulator_on_queue(tmp_path, f"hv-term-{marker}", image, latency=4)
    worker = deploy_worker(queues=hv.queue, name=f"term-{marker}", concurrency=2)
    operation = request_vm(user=user, project=project, plan=plan, image=image, hypervisor=hv, name="vm-term")
    wait_until(lambda: Operation.objects.get(pk=operation.pk).task_ref, 60, message="create submitted")

    # When systemd stops the worker while the build runs (its next poll is a countdown message it holds)
    sent_at = time.monotonic()
    worker.stop(timeout=60)
    stop_seconds = time.monotonic() - sent_at

    # Then it exits at once and cleanly: no slot was held waiting on the hypervisor
    assert worker.proc.returncode == 0, worker.tail()
    assert stop_seconds < 10, stop_seconds
    assert Operation.objects.get(pk=operation.pk).state == OperationState.RUNNING

    # And the worker that comes up next finishes the same claim: one VM, one attempt, no reaper needed
    deploy_worker(queues=hv.queue, name=f"term2-{marker}", concurrency=2)
    done = wait_operation(operation.pk, timeout=60)
    assert done.state == OperationState.SUCCEEDED, done.error_message
    assert done.attempts == 1
    assert store_for(hv.connection["state_path"]).create_counts() == {str(operation.idempotency_key): 1}
