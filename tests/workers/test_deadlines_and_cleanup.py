"""Issue 17 items 3 and 5 with a real worker: an operation whose hypervisor task never
finishes is settled at its deadline from what the hypervisor shows; a failed create removes
the guest it made, says so, and an operator's retry still leaves exactly one guest."""

import pytest

from compute import services
from compute.choices import OperationState, PowerState, VMStatus
from compute.models import Operation, VirtualMachine
from tests.fixtures.compute import wait_operation
from workers.drivers.simulator import store_for

pytestmark = pytest.mark.worker


def _running_vm(user, project, plan, image, simulator):
    request = services.vm_request_create(
        user=user, project=project, plan=plan, image=image, hypervisor=simulator, name="vm-d"
    )
    vm = VirtualMachine.objects.get(request=request)
    assert wait_operation(Operation.objects.get(vm=vm).pk).state == OperationState.SUCCEEDED
    vm.refresh_from_db()
    return vm


def _configure(simulator, **settings):
    simulator.connection.update(settings)
    simulator.save()


def test_a_stop_that_never_finishes_fails_at_its_deadline_with_what_the_hypervisor_shows(
    live_worker, user, project, plan, image, simulator
):
    # Given a VM whose hypervisor never finishes a stop, and a 3 s stop deadline on that hypervisor
    _configure(simulator, latency=0)
    vm = _running_vm(user, project, plan, image, simulator)
    _configure(simulator, latency_stop=100000, deadlines={"stop": 3})

    # When it is stopped
    done = wait_operation(services.vm_action(vm=vm, action="stop", user=user).pk, timeout=60)

    # Then the engine settles it at the deadline: failed, saying what the hypervisor shows
    assert (done.state, done.error_code) == (OperationState.FAILED, "deadline")
    assert done.error_message == (
        "The stop did not finish within its deadline of 3 seconds. The hypervisor shows the guest running."
    )
    vm.refresh_from_db()
    assert (vm.status, vm.power_state, vm.task_state) == (VMStatus.ACTIVE, PowerState.RUNNING, None)


def test_a_reboot_past_its_deadline_whose_guest_runs_succeeds(live_worker, user, project, plan, image, simulator):
    # Given a reboot the hypervisor never reports done, on a guest that runs
    _configure(simulator, latency=0)
    vm = _running_vm(user, project, plan, image, simulator)
    _configure(simulator, latency_reboot=100000, deadlines={"reboot": 3})

    done = wait_operation(services.vm_action(vm=vm, action="reboot", user=user).pk, timeout=60)

    # Then at its deadline it counts as done: the guest is in the state a reboot wants
    assert done.state == OperationState.SUCCEEDED
    assert done.result["deadline"] == "Past its deadline of 3 s the hypervisor showed it done."
    vm.refresh_from_db()
    assert (vm.status, vm.task_state) == (VMStatus.ACTIVE, None)


def test_a_failed_create_removes_its_guest_and_a_retry_makes_one(live_worker, user, project, plan, image, simulator):
    # Given a create whose guest is made, then the hypervisor fails it for good
    _configure(simulator, latency=0.5, permanent_failures_first={"poll": 1})
    request = services.vm_request_create(
        user=user, project=project, plan=plan, image=image, hypervisor=simulator, name="vm-debris"
    )
    vm = VirtualMachine.objects.get(request=request)
    op = Operation.objects.get(vm=vm)
    store = store_for(simulator.connection["state_path"])

    done = wait_operation(op.pk, timeout=60)

    # Then the half-built guest is gone and the operation says so
    assert done.state == OperationState.FAILED
    assert "was removed from the hypervisor" in done.error_message
    assert done.result["cleanup"]["removed"]
    assert store.guests() == []
    vm.refresh_from_db()
    assert (vm.status, vm.backend_id, vm.task_state) == (VMStatus.ERROR, "", None)

    # And an operator's retry builds exactly one guest
    services.operation_retry(operation=op, actor=user)
    assert wait_operation(op.pk, timeout=60).state == OperationState.SUCCEEDED
    assert len(store.guests()) == 1
