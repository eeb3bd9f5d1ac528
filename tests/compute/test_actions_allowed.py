"""Which action may start from which VM status (compute/choices.py ACTION_ALLOWED_FROM), as a
table, and vm_action holding to it for every pair: allowed makes a pending operation, anything
else is a 409 that changes nothing."""

import pytest
from django.db import transaction

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
    # day-2 (compute/services/day2.py): snapshots and resize of a VM that exists; revert, snapshot
    # delete and rebuild also rescue a VM in error
    (Action.SNAPSHOT_CREATE, A),
    (Action.SNAPSHOT_CREATE, S),
    (Action.SNAPSHOT_REVERT, A),
    (Action.SNAPSHOT_REVERT, S),
    (Action.SNAPSHOT_REVERT, E),
    (Action.SNAPSHOT_DELETE, A),
    (Action.SNAPSHOT_DELETE, S),
    (Action.SNAPSHOT_DELETE, E),
    (Action.RESIZE, A),
    (Action.RESIZE, S),
    (Action.REBUILD, A),
    (Action.REBUILD, S),
    (Action.REBUILD, E),
    # backups (compute/services/backups.py): taken of a VM that exists; restore and delete also in error
    (Action.BACKUP_CREATE, A),
    (Action.BACKUP_CREATE, S),
    (Action.BACKUP_RESTORE, A),
    (Action.BACKUP_RESTORE, S),
    (Action.BACKUP_RESTORE, E),
    (Action.BACKUP_DELETE, A),
    (Action.BACKUP_DELETE, S),
    (Action.BACKUP_DELETE, E),
}
DAY2_ACTIONS = [Action.SNAPSHOT_CREATE, Action.SNAPSHOT_REVERT, Action.SNAPSHOT_DELETE, Action.RESIZE, Action.REBUILD]
DAY2_ACTIONS += [Action.BACKUP_CREATE, Action.BACKUP_RESTORE, Action.BACKUP_DELETE]
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


@pytest.mark.parametrize("action, status", [(a, s) for a in DAY2_ACTIONS for s in VMStatus.values])
def test_day2_services_check_the_same_table(idle_vm, user, action, status):
    # Every day-2 service starts with vm_lock_for_action: allowed pairs pass, others are a 409
    vm = idle_vm(status)
    with transaction.atomic():
        if (action, status) in ALLOWED:
            assert services.vm_lock_for_action(vm=vm, action=action, user=user).pk == vm.pk
        else:
            with pytest.raises(Conflict, match=f"it is {vm.get_status_display().lower()}"):
                services.vm_lock_for_action(vm=vm, action=action, user=user)
