"""Why a chaos run can count more hypervisor stop calls than stop operations (issue 17: the
Sentinel failover once showed 8 stop calls for 6 stops), and why that is correct.

A claim whose operation has no recorded handle submits; a claim that finds one polls it. A
worker lost between calling ``stop`` and storing the answer (SIGKILL, a broker failover that
ends the worker, or its lease running out while it waits on a busy machine) leaves no handle,
so the operation's next claim calls ``stop`` again. The driver makes that second call join the
stop already under way (the same task) or answer "done" for a stopped guest: the hypervisor
stops the guest once, the operation succeeds once, billing sees one status change.

The engine is driven directly against the simulator; no worker serves the queue."""

import time
from datetime import timedelta

from django.utils import timezone

from compute import services
from compute.choices import OperationState, PowerState, VMStatus
from compute.models import Operation, VirtualMachine, VMStatusEvent
from workers import engine
from workers.drivers.simulator import store_for
from workers.engine import driver_for


def _active_vm(user, project, plan, image, simulator):
    simulator.queue = "nobody-serves-this"
    simulator.connection.update(latency=0)
    simulator.save()
    request = services.vm_request_create(
        user=user, project=project, plan=plan, image=image, hypervisor=simulator, name="vm-twice"
    )
    create = Operation.objects.get(vm__request=request)
    assert engine.execute_operation(create.pk, worker="w0") == "succeeded"
    return VirtualMachine.objects.get(pk=create.vm_id)


def test_a_stop_called_again_after_its_handle_was_lost_joins_the_first_and_succeeds_once(
    user, project, plan, image, simulator
):
    vm = _active_vm(user, project, plan, image, simulator)
    simulator.connection.update(latency=0.5)
    simulator.save()
    store = store_for(simulator.connection["state_path"])
    op = services.vm_action(vm=vm, action="stop", user=user)

    # Given a worker that claimed the stop and called the hypervisor, then died before storing the answer
    claim = services.operation_claim(operation_id=op.pk, worker="lost")
    first = driver_for(simulator).stop(vm.backend_id)
    Operation.objects.filter(pk=op.pk).update(lease_until=timezone.now() - timedelta(seconds=1))

    # When the reaper hands it back and the next claim runs it
    assert engine.reap_expired_operations()["requeued"] == 1
    assert engine.execute_operation(op.pk, worker="w2") == "submitted"

    # Then the second stop call joined the first one's task on the hypervisor
    op.refresh_from_db()
    assert op.task_ref == first.ref and op.attempts == 2
    assert store.call_counts()["stop"] == 2
    assert store.read().execute("SELECT COUNT(*) FROM tasks WHERE action = 'stop'").fetchone()[0] == 1

    # and the lost worker's late write changes nothing (its claim is gone)
    assert not services.operation_record_submitted(operation=op, token=claim.token, task=first.to_dict())

    # and it ends once: succeeded, the guest stopped, one "stopped" event for billing
    deadline = timezone.now() + timedelta(seconds=20)
    while engine.poll_operation(op.pk, str(op.claim_token)) != "succeeded":
        assert timezone.now() < deadline, "the stop never finished"
        time.sleep(0.1)
    op.refresh_from_db()
    vm.refresh_from_db()
    assert op.state == OperationState.SUCCEEDED
    assert (vm.status, vm.power_state) == (VMStatus.STOPPED, PowerState.STOPPED)
    assert VMStatusEvent.objects.filter(vm=vm, status=VMStatus.STOPPED).count() == 1

    # And a stop call on the stopped guest is answered "done" without a new task
    again = driver_for(simulator).stop(vm.backend_id)
    assert again.done and store.read().execute("SELECT COUNT(*) FROM tasks WHERE action = 'stop'").fetchone()[0] == 1
