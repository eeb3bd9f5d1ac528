"""Cancelling a pending operation whose action the hypervisor already has.

An operation goes back to ``pending`` with its hypervisor handle kept after its
worker was lost (the reaper) or after transient poll errors; the next claim
resumes it by polling that handle. Until then it is "pending", and the API lets
a project member cancel it.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from compute import services
from compute.choices import OperationState, VMStatus
from compute.models import Operation, VirtualMachine
from controlplane.errors import Conflict
from workers import engine
from workers.drivers.simulator import store_for


@pytest.fixture
def submitted_then_requeued(user, project, plan, image, simulator):
    """A create the simulator is building, handed back to pending as after a worker crash."""
    simulator.queue = "nobody-serves-this"  # no worker takes it: the test drives the engine itself
    simulator.connection["latency"] = 0.2
    simulator.save()
    request = services.vm_request_create(
        user=user, project=project, plan=plan, image=image, hypervisor=simulator, name="cancel-me"
    )
    vm = VirtualMachine.objects.get(request=request)
    op = Operation.objects.get(vm=vm, action="create")
    assert engine.execute_operation(op.pk, worker="crashed-worker") == "submitted"
    Operation.objects.filter(pk=op.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert engine.reap_expired_operations()["requeued"] == 1
    op.refresh_from_db()
    assert op.state == OperationState.PENDING and op.task_ref
    return vm, op


def test_cancelling_a_create_the_hypervisor_already_has_leaves_no_guest_behind(submitted_then_requeued, user):
    vm, op = submitted_then_requeued
    store = store_for(vm.hypervisor.connection["state_path"])
    assert store.create_counts() == {str(op.idempotency_key): 1}

    # When a member cancels the "pending" create
    try:
        services.operation_cancel(operation=op, actor=user)
    except Conflict:
        refused = True
    else:
        refused = False

    # Then either the cancel is refused and the create goes on, or no guest is left behind a deleted VM
    vm.refresh_from_db()
    op.refresh_from_db()
    if refused:
        assert op.state == OperationState.PENDING and vm.status == VMStatus.BUILDING
    else:
        keys = [guest["idempotency_key"] for guest in store.guests()]
        assert vm.status != VMStatus.DELETED or str(op.idempotency_key) not in keys, (
            f"vm {vm.pk} is deleted but its guest (key {op.idempotency_key}) still runs on the hypervisor"
        )
