"""Crash, retry, relay and reconciliation behaviour with a real worker process."""

import time

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError

from audit.models import AuditEvent
from compute import services
from compute.choices import OperationState, PowerState, VMStatus
from compute.models import Operation, VirtualMachine
from controlplane.celery import app
from tests.fixtures.compute import wait_for, wait_operation
from workers import engine
from workers.drivers.simulator import store_for

pytestmark = pytest.mark.worker


def _create_vm(user, project, plan, image, simulator, name="vm-1"):
    request = services.vm_request_create(
        user=user, project=project, plan=plan, image=image, hypervisor=simulator, name=name
    )
    vm = VirtualMachine.objects.get(request=request)
    return vm, Operation.objects.get(vm=vm, action="create")


def _configure(simulator, **settings):
    simulator.connection.update(settings)
    simulator.save()


def test_worker_killed_mid_create_still_ends_with_exactly_one_vm(
    celery_worker_factory, transactional_db, user, project, plan, image, simulator
):
    # Given a slow hypervisor and a worker of our own that we can kill
    _configure(simulator, latency=3)
    # A queue only this worker serves: the session's live worker (sim-test) would otherwise take
    # the dead worker's poll and finish the create under its still-valid claim, and the reaper
    # would find nothing to requeue (seen in a full run).
    simulator.queue = "sim-victim"
    simulator.save()
    worker = celery_worker_factory(queues="sim-victim", name="victim")
    _, op = _create_vm(user, project, plan, image, simulator)
    wait_for(lambda: Operation.objects.get(pk=op.pk).task_ref, timeout=60, message="create submitted")

    # When the worker is SIGKILLed while the create runs on the hypervisor
    worker.kill()
    assert Operation.objects.get(pk=op.pk).state == OperationState.RUNNING

    # And the reaper finds the expired lease (beat runs it whether a worker is up or not; were it
    # to wait for a slow restart, the dead worker's poll message, redelivered after the visibility
    # timeout, could resume the operation with its still-valid claim first), and a new worker comes up
    wait_for(lambda: engine.reap_expired_operations()["requeued"], timeout=90, interval=0.5, message="reaped")
    worker.start()

    # Then the operation still ends, and exactly one VM exists on the simulator
    done = wait_operation(op.pk, timeout=30)
    assert done.state == OperationState.SUCCEEDED, done.error_message
    assert done.attempts == 2
    store = store_for(simulator.connection["state_path"])
    assert store.create_counts() == {str(op.idempotency_key): 1}
    assert len(store.guests()) == 1
    assert AuditEvent.objects.filter(actor="reaper", action="operation.state_changed").exists()
    worker.stop()


def test_transient_failures_are_retried_then_succeed(live_worker, user, project, plan, image, simulator):
    _configure(simulator, latency=0.1, transient_failures_first={"create": 2})
    _, op = _create_vm(user, project, plan, image, simulator)
    done = wait_operation(op.pk)
    assert done.state == OperationState.SUCCEEDED
    assert done.attempts == 3
    assert AuditEvent.objects.filter(action="operation.state_changed", details__state="pending").count() == 2


def test_a_permanent_failure_fails_at_once_with_its_message(live_worker, user, project, plan, image, simulator):
    _configure(simulator, latency=0.1, permanent_failures_first={"create": 1})
    vm, op = _create_vm(user, project, plan, image, simulator)
    done = wait_operation(op.pk)
    assert done.state == OperationState.FAILED and done.attempts == 1
    assert done.error_message == "Simulated permanent failure during create (call 1)."
    vm.refresh_from_db()
    assert vm.status == VMStatus.ERROR and vm.task_state is None
    project.quota.refresh_from_db()
    assert project.quota.used_vms == 0  # a failed create gives its quota back


def test_retries_exhausted_leave_a_clear_failed_state(live_worker, user, project, plan, image, simulator):
    _configure(simulator, latency=0.1, transient_failures_first={"stop": 50})
    vm, op = _create_vm(user, project, plan, image, simulator)
    wait_operation(op.pk)
    stop = services.vm_action(vm=vm, action="stop", user=user)
    done = wait_operation(stop.pk, timeout=60)
    assert done.state == OperationState.FAILED
    assert done.attempts == done.max_attempts == 5
    assert done.error_message.startswith("Gave up after 5 attempts: Simulated transient failure during stop")
    # Nothing was ever submitted and the hypervisor says it runs: back to active, not error
    vm.refresh_from_db()
    assert (vm.status, vm.power_state, vm.task_state) == (VMStatus.ACTIVE, PowerState.RUNNING, None)


def test_broker_down_at_commit_then_the_relay_publishes(
    live_worker, monkeypatch, user, project, plan, image, simulator
):
    # Given a broker that refuses every publish
    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(app, "send_task", broker_down)
    # When a VM is requested, the request still succeeds and the operation waits
    vm, op = _create_vm(user, project, plan, image, simulator)
    time.sleep(1)
    assert Operation.objects.get(pk=op.pk).state == OperationState.PENDING
    # Then once the broker is back, the relay publishes it and it runs
    monkeypatch.undo()
    wait_for(lambda: engine.relay_pending_operations()["relayed"], timeout=10, interval=0.5, message="relayed")
    assert wait_operation(op.pk).state == OperationState.SUCCEEDED


def test_maintenance_holds_operations_until_lifted(live_worker, user, project, plan, image, simulator):
    simulator.maintenance = True
    simulator.save()
    _, op = _create_vm(user, project, plan, image, simulator)
    wait_for(lambda: "maintenance" in Operation.objects.get(pk=op.pk).progress_message, message="deferred")
    assert Operation.objects.get(pk=op.pk).state == OperationState.PENDING
    simulator.maintenance = False
    simulator.save()
    Operation.objects.filter(pk=op.pk).update(next_attempt_at=timezone.now() - timezone.timedelta(seconds=10))
    engine.relay_pending_operations()
    assert wait_operation(op.pk).state == OperationState.SUCCEEDED


def test_operator_retry_of_a_failed_create_reuses_the_key(live_worker, user, project, plan, image, simulator):
    _configure(simulator, latency=0.1, permanent_failures_first={"create": 1})
    vm, op = _create_vm(user, project, plan, image, simulator)
    assert wait_operation(op.pk).state == OperationState.FAILED
    services.operation_retry(operation=op, actor=user)
    done = wait_operation(op.pk)
    assert done.state == OperationState.SUCCEEDED
    vm.refresh_from_db()
    assert vm.status == VMStatus.ACTIVE
    assert store_for(simulator.connection["state_path"]).create_counts() == {str(op.idempotency_key): 1}


class TestReconciliation:
    @pytest.fixture
    def running_vm(self, live_worker, user, project, plan, image, simulator):
        _configure(simulator, latency=0.05)
        vm, op = _create_vm(user, project, plan, image, simulator)
        wait_operation(op.pk)
        vm.refresh_from_db()
        return vm

    def test_a_vm_stopped_behind_our_back(self, running_vm, simulator):
        store_for(simulator.connection["state_path"]).set_power(running_vm.backend_id, PowerState.STOPPED)
        report = engine.reconcile_hypervisor(simulator)
        assert report["updated"] == 1
        running_vm.refresh_from_db()
        assert (running_vm.status, running_vm.power_state) == (VMStatus.STOPPED, PowerState.STOPPED)
        assert AuditEvent.objects.filter(action="drift.detected", details__kind="state_changed").exists()

    def test_a_vm_deleted_behind_our_back_is_lost_only_after_the_grace_period(self, running_vm, simulator):
        store_for(simulator.connection["state_path"]).remove(running_vm.backend_id)
        engine.reconcile_hypervisor(simulator)
        running_vm.refresh_from_db()
        assert running_vm.missing_since is not None and running_vm.status == VMStatus.ACTIVE
        time.sleep(2.2)  # ENGINE_MISSING_GRACE_SECONDS=2 in tests
        assert engine.reconcile_hypervisor(simulator)["lost"] == 1
        running_vm.refresh_from_db()
        assert (running_vm.status, running_vm.power_state) == (VMStatus.ERROR, PowerState.MISSING)
        assert running_vm.lost_at is not None

    def test_an_unknown_vm_is_reported(self, running_vm, simulator):
        stranger = store_for(simulator.connection["state_path"]).add_guest("hand-made")
        assert engine.reconcile_hypervisor(simulator)["unknown"] == 1
        simulator.refresh_from_db()
        assert simulator.drift["unknown"] == [stranger]
        assert AuditEvent.objects.filter(action="drift.detected", details__backend_id=stranger).count() == 1
        engine.reconcile_hypervisor(simulator)  # reported once, not on every pass
        assert AuditEvent.objects.filter(action="drift.detected", details__backend_id=stranger).count() == 1

    def test_a_listing_error_never_counts_as_gone(self, running_vm, simulator):
        _configure(simulator, transient_failure_rate=1.0, fail_actions=["list"])
        report = engine.reconcile_hypervisor(simulator)
        assert "error" in report
        running_vm.refresh_from_db()
        assert running_vm.missing_since is None and running_vm.status == VMStatus.ACTIVE

    def test_vms_with_an_active_operation_are_skipped(self, running_vm, user, simulator):
        _configure(simulator, latency=3)
        stop = services.vm_action(vm=running_vm, action="stop", user=user)
        store_for(simulator.connection["state_path"]).remove(running_vm.backend_id)
        engine.reconcile_hypervisor(simulator)
        running_vm.refresh_from_db()
        assert running_vm.missing_since is None
        wait_operation(stop.pk)
