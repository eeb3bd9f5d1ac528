"""How many transactions and statements one operation costs (issue 25): a budget that can fail.

The engine's steps run in this process, in order, against a zero-latency simulator, with
every statement recorded (bench/engine/profile.py's Recorder): the physical floor is three
transactions, accept (the request), claim, and the write-back that also stores the handle
when the hypervisor answered "done" to the submit.
"""

import pytest
from django.db import connection

from bench.engine.profile import Recorder
from compute import dispatch, services
from compute.choices import OperationState
from compute.models import Operation, VirtualMachine
from workers import engine

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tasks_in_process(monkeypatch):
    published = []
    monkeypatch.setattr(dispatch, "_send", lambda name, args, queue, countdown=None: published.append((name, args)))

    def run():
        while published:
            name, args = published.pop(0)
            if name == dispatch.EXECUTE:
                engine.execute_operation(args[0], worker="budget")
            elif name == dispatch.POLL:
                engine.poll_operation(*args)

    return run


@pytest.fixture
def built_vm(user, project, plan, image, simulator, tasks_in_process):
    """A VM the simulator really built, in this process; ``latency`` of later actions is set per test."""

    def make(latency: float) -> VirtualMachine:
        simulator.connection = {**simulator.connection, "latency": 0}
        simulator.save()
        request = services.vm_request_create(
            user=user, project=project, plan=plan, image=image, hypervisor=simulator, name="budget"
        )
        tasks_in_process()
        simulator.connection = {**simulator.connection, "latency": latency}
        simulator.save()
        vm = VirtualMachine.objects.select_related("project", "hypervisor").get(request=request)
        assert vm.status == "active", vm.status
        return vm

    return make


def test_a_zero_latency_stop_costs_three_transactions(built_vm, user, tasks_in_process):
    vm = built_vm(0)
    recorder = Recorder(connection)
    with connection.execute_wrapper(recorder):
        recorder.step = "request"
        operation = services.vm_action(vm=vm, action="stop", user=user)
        recorder.step = "worker"
        tasks_in_process()
    assert Operation.objects.get(pk=operation.pk).state == OperationState.SUCCEEDED
    transactions = {tx for _, _, _, tx in recorder.rows}
    assert len(transactions) == 3, recorder.rows
    worker_statements = [sql for step, sql, _, _ in recorder.rows if step == "worker"]
    # claim: the operation with its hypervisor's lock, the compare-and-swap; write-back: the
    # operation, the VM's lock and row, its timeline event, one audit append (one statement)
    assert len(worker_statements) <= 7, worker_statements
    # the claim writes no audit event; the write-back writes one
    assert sum(sql == "SELECT audit_event_append" for sql in worker_statements) == 1


def test_a_slow_action_still_records_its_handle_before_polling(built_vm, user):
    """Not done at submit: the handle is stored first (a crash then resumes by polling it)."""
    vm = built_vm(5)
    operation = services.vm_action(vm=vm, action="stop", user=user)
    published = []
    dispatch_send = dispatch._send
    try:
        dispatch._send = lambda name, args, queue, countdown=None: published.append(name)
        engine.execute_operation(operation.pk, worker="budget")
    finally:
        dispatch._send = dispatch_send
    operation.refresh_from_db()
    assert operation.state == OperationState.RUNNING and operation.task_ref and operation.submitted_at
    assert published == [dispatch.POLL]
