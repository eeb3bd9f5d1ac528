"""Which action may start from which VM status (compute/choices.py ACTION_ALLOWED_FROM), as a
table, and vm_action holding to it for every pair: allowed makes a pending operation, anything
else is a 409 that changes nothing."""

import pytest

from compute import services
from compute.choices import ACTION_ALLOWED_FROM, Action, OperationState, VMStatus
from compute.models import Operation
from controlplane.errors import Conflict, InvalidInput

A, S, E = VMStatus.ACTIVE, VMStatus.STOPPED, VMStatus.ERROR
USER_ACTIONS = [Action.START, Action.STOP, Action.REBOOT, Action.DELETE]
ALLOWED = {
    (Action.START, S),
    (Action.STOP, A),
    (Action.REBOOT, A),
    (Action.DELETE, A),
    (Action.DELETE, S),
    (Action.DELETE, E),
}
PAIRS = [(action, status) for action in USER_ACTIONS for status in VMStatus.values]


def test_the_table_is_the_one_compute_checks():
    assert {(action, status) for action, statuses in ACTION_ALLOWED_FROM.items() for status in statuses} == ALLOWED


@pytest.mark.parametrize("action, status", PAIRS)
def test_vm_action_allows_exactly_the_tables_pairs(idle_vm, user, action, status):
    # Given an idle VM in ``status``
    vm = idle_vm(status)
    before = Operation.objects.filter(vm=vm).count()

    if (action, status) in ALLOWED:
        # Then the action is accepted: a pending operation and the VM busy with it
        operation = services.vm_action(vm=vm, action=action, user=user)
        assert (operation.action, operation.state) == (action, OperationState.PENDING)
        assert operation.previous_status == status
        vm.refresh_from_db()
        assert (vm.status, vm.task_state) == (status, action)
    else:
        # Else a 409 naming the status, and nothing written
        with pytest.raises(Conflict, match=f"Cannot {action} "):
            services.vm_action(vm=vm, action=action, user=user)
        vm.refresh_from_db()
        assert (vm.status, vm.task_state) == (status, None)
        assert Operation.objects.filter(vm=vm).count() == before


def test_an_unknown_action_is_invalid_input_not_a_conflict(idle_vm, user):
    with pytest.raises(InvalidInput):
        services.vm_action(vm=idle_vm(A), action="resize", user=user)
