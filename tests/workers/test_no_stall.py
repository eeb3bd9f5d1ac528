"""Issue 17 item 2: a worker frozen (SIGSTOP) inside its write-back transaction, holding the
operation's and the VM's row locks, stalls nothing else. Real processes throughout: the
frozen worker, a live worker serving the control queue (reaper, relay), PostgreSQL's own
timeouts; the API request goes through the real middleware and error mapping."""

import os
import signal
import time
from datetime import timedelta

import psycopg
import pytest
from django.utils import timezone

from compute import services
from compute.choices import OperationState, VMStatus
from compute.models import ImageReference, Operation, VirtualMachine
from controlplane.celery import app
from tests import workerproc
from tests.fixtures.compute import wait_for, wait_operation
from tests.fixtures.factories import HypervisorFactory

pytestmark = pytest.mark.worker

# The frozen worker's engine role: PostgreSQL ends its session this long after it went idle
# in its transaction (DB_ENGINE_IDLE_IN_TRANSACTION_TIMEOUT_MS), releasing its row locks.
IDLE_IN_TRANSACTION_MS = 15000


def _vm(user, project, plan, image, hypervisor, name):
    request = services.vm_request_create(
        user=user, project=project, plan=plan, image=image, hypervisor=hypervisor, name=name
    )
    vm = VirtualMachine.objects.get(request=request)
    return vm, Operation.objects.get(vm=vm, action="create")


def _backend_waiting_on_a_lock(db) -> int | None:
    row = db.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        " AND query ILIKE %s AND pid <> pg_backend_pid()",
        ["%compute_virtualmachine%"],
    ).fetchone()
    return row[0] if row else None


def _backend_state(db, pid: int) -> str | None:
    row = db.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    return row[0] if row else None


def _row_lockable(db, vm_id: int) -> bool:
    try:
        db.execute("SELECT id FROM compute_virtualmachine WHERE id = %s FOR NO KEY UPDATE NOWAIT", [vm_id])
        return True
    except psycopg.errors.LockNotAvailable:
        return False
    finally:
        db.rollback()


def test_a_worker_frozen_in_its_write_back_stalls_nothing_else(
    celery_worker_factory, live_worker, api, user, project, plan, image, simulator
):
    figures = {}
    # Given a VM served by a worker of its own, and a second hypervisor nobody serves
    simulator.queue = "sim-victim"
    simulator.connection.update(latency=0)
    simulator.save()
    victim = celery_worker_factory(
        queues="sim-victim",
        name="frozen",
        concurrency=1,
        extra_env={"DB_ENGINE_IDLE_IN_TRANSACTION_TIMEOUT_MS": str(IDLE_IN_TRANSACTION_MS)},
    )
    vm, create = _vm(user, project, plan, image, simulator, "frozen-vm")
    assert wait_operation(create.pk).state == OperationState.SUCCEEDED
    other = HypervisorFactory(
        queue="nobody-serves-this", connection={"state_path": simulator.connection["state_path"] + ".2", "latency": 0}
    )
    ImageReference.objects.create(image=image, hypervisor=other, ref="tmpl-debian-12")
    _, lost = _vm(user, project, plan, image, other, "worker-died")
    _, stale = _vm(user, project, plan, image, other, "never-published")

    # When the victim's write-back of a stop waits on the VM row (we hold it), we freeze it
    # there and let go: it now holds the operation's and the VM's row locks, frozen.
    simulator.connection.update(latency_stop=2)
    simulator.save()
    stop = services.vm_action(vm=vm, action="stop", user=user)
    db = psycopg.connect(workerproc.test_database_url())
    # pg_stat_activity from a connection of its own: a fresh snapshot per query
    watch = psycopg.connect(workerproc.test_database_url(), autocommit=True)
    try:
        db.execute("SELECT id FROM compute_virtualmachine WHERE id = %s FOR NO KEY UPDATE", [vm.pk])
        pid = wait_for(
            lambda: _backend_waiting_on_a_lock(watch), timeout=30, interval=0.05, message="write-back waiting"
        )
        os.killpg(victim.proc.pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        db.rollback()
        wait_for(lambda: _backend_state(watch, pid) == "idle in transaction", timeout=10, message="frozen in its tx")
        db.rollback()
        assert not _row_lockable(db, vm.pk)

        # And another operation's worker really died, and another was never published
        assert services.operation_claim(operation_id=lost.pk, worker="died") is not None
        Operation.objects.filter(pk=lost.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
        Operation.objects.filter(pk=stale.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=60))
        wait_for(
            lambda: Operation.objects.get(pk=stop.pk).lease_until < timezone.now(), timeout=30, message="lease expired"
        )

        # Then the reaper (a real worker on the control queue) requeues the dead one and skips the frozen one
        started = time.monotonic()
        reaped = app.send_task("reap_expired_operations", queue="control").get(timeout=60)
        figures["reaper_seconds"] = round(time.monotonic() - started, 2)
        assert reaped["requeued"] >= 1 and reaped["skipped"] >= 1, reaped
        assert Operation.objects.get(pk=lost.pk).state == OperationState.PENDING
        assert Operation.objects.get(pk=stop.pk).state == OperationState.RUNNING

        # And the relay keeps publishing
        started = time.monotonic()
        relayed = app.send_task("relay_pending_operations", queue="control").get(timeout=60)
        figures["relay_seconds"] = round(time.monotonic() - started, 2)
        assert relayed["relayed"] >= 1

        # And a start on the locked VM answers 503 with a clear message instead of hanging
        started = time.monotonic()
        response = api.post(f"/api/v1/virtual-machines/{vm.pk}/start/")
        figures["api_seconds"] = round(time.monotonic() - started, 2)
        assert response.status_code == 503, response.content
        assert response.json()["error"]["code"] == "busy"
        assert "try again" in response.json()["error"]["message"]
        assert response["Retry-After"] == "5"

        # And PostgreSQL ends the frozen session after the engine's idle-in-transaction timeout
        wait_for(lambda: _row_lockable(db, vm.pk), timeout=60, interval=0.2, message="frozen session ended")
        figures["row_lock_held_seconds"] = round(time.monotonic() - frozen_at, 1)
    finally:
        os.killpg(victim.proc.pid, signal.SIGCONT)
        db.close()
        watch.close()

    # Finally the stop is resumed from its stored handle and completes
    wait_for(lambda: app.send_task("reap_expired_operations", queue="control").get(timeout=60)["requeued"], timeout=60)
    done = wait_operation(stop.pk, timeout=60)
    assert done.state == OperationState.SUCCEEDED, done.error_message
    vm.refresh_from_db()
    assert vm.status == VMStatus.STOPPED
    print(f"\nno-stall figures: {figures}")
    victim.stop()
