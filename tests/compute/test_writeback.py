"""Write-back as tables (compute/services/writeback.py): the status each action leaves a VM
in when it succeeds or fails, from each prior status and each power state the hypervisor
reports; then the same decisions written through operation_succeed / operation_fail on
real rows (status, timeline event, task_state, quota)."""

import pytest

from compute import services
from compute.choices import (
    ACTION_ALLOWED_FROM,
    STATUS_KEEPING_ACTIONS,
    Action,
    OperationState,
    PowerState,
    VMStatus,
)
from compute.models import Operation, ProjectQuota, VirtualMachine, VMStatusEvent
from compute.services.writeback import (
    status_after_failure,
    status_after_observation,
    status_after_success,
    status_for_power,
)

A, S, D, E, B = VMStatus.ACTIVE, VMStatus.STOPPED, VMStatus.DELETED, VMStatus.ERROR, VMStatus.BUILDING
ON, OFF, PAUSED, UNKNOWN = PowerState.RUNNING, PowerState.STOPPED, PowerState.PAUSED, PowerState.UNKNOWN
NOT_REPORTED = "not reported"  # the hypervisor's answer carried no guest (observed=None)


def observed(power):
    return None if power == NOT_REPORTED else {"backend_id": "sim-1", "power_state": power}


@pytest.mark.parametrize(
    "power, status",
    [(ON, A), (OFF, S), (PAUSED, None), (UNKNOWN, None), (PowerState.MISSING, None), (None, None)],
)
def test_only_running_and_stopped_prove_a_status(power, status):
    assert status_for_power(power) == status
    assert status_for_power(power, "kept") == (status or "kept")


# -- success -------------------------------------------------------------------------------------

SUCCESS = [
    # action, power the hypervisor reports after it, VM status
    (Action.CREATE, ON, A),
    (Action.CREATE, OFF, S),
    (Action.CREATE, PAUSED, A),
    (Action.CREATE, UNKNOWN, A),
    (Action.CREATE, NOT_REPORTED, A),
    (Action.START, ON, A),
    (Action.START, OFF, S),
    (Action.START, PAUSED, A),
    (Action.START, NOT_REPORTED, A),
    (Action.STOP, ON, A),
    (Action.STOP, OFF, S),
    (Action.STOP, PAUSED, S),
    (Action.STOP, NOT_REPORTED, S),
    (Action.REBOOT, ON, A),
    (Action.REBOOT, OFF, S),
    (Action.REBOOT, UNKNOWN, A),
    (Action.REBOOT, NOT_REPORTED, A),
    (Action.DELETE, ON, D),
    (Action.DELETE, OFF, D),
    (Action.DELETE, NOT_REPORTED, D),
]


@pytest.mark.parametrize("action, power, status", SUCCESS)
def test_a_succeeded_action_leaves_the_status_the_hypervisor_confirms(action, power, status):
    assert status_after_success(action=action, observed=observed(power)) == status


# A day-2 action (snapshot, resize, rebuild) keeps the status the VM had, unless the hypervisor
# reports a power state that proves another.
KEEPING = [
    (action, prior, power, expected)
    for action in STATUS_KEEPING_ACTIONS
    for prior, power, expected in [
        (S, NOT_REPORTED, S),
        (A, NOT_REPORTED, A),
        (A, UNKNOWN, A),
        (S, ON, A),
        (A, OFF, S),
        (VMStatus.ERROR, ON, A),
        ("", NOT_REPORTED, VMStatus.ERROR),
    ]
]


@pytest.mark.parametrize("action, prior, power, status", KEEPING)
def test_a_day2_action_keeps_the_status_it_found(action, prior, power, status):
    assert status_after_success(action=action, observed=observed(power), previous_status=prior) == status


# -- failure -------------------------------------------------------------------------------------

ABSENT = "confirmed absent"  # the hypervisor says the guest does not exist
UNASKED = "could not ask"  # no answer: observed_known=False


def failure_case(action, answer):
    if answer == ABSENT:
        return {"action": action, "observed": None, "observed_known": True}
    if answer == UNASKED:
        return {"action": action, "observed": None, "observed_known": False}
    return {"action": action, "observed": observed(answer), "observed_known": True}


FAILURE = [
    # action, hypervisor's answer, submitted to it, status before, VM status after
    *[(Action.CREATE, answer, sent, B, E) for answer in (ON, OFF, ABSENT, UNASKED) for sent in (True, False)],
    *[(action, ABSENT, True, prior, E) for action in (Action.START, Action.STOP, Action.REBOOT) for prior in (A, S)],
    *[(Action.DELETE, ABSENT, sent, prior, D) for sent in (True, False) for prior in (A, S, E)],
    *[(action, ON, True, prior, A) for action in (Action.START, Action.STOP, Action.REBOOT, Action.DELETE)
      for prior in (A, S)],
    *[(action, OFF, True, prior, S) for action in (Action.START, Action.STOP, Action.REBOOT, Action.DELETE)
      for prior in (A, S)],
    (Action.STOP, PAUSED, True, A, E),
    (Action.START, UNKNOWN, True, S, E),
    # Nobody could say: the status is kept when the hypervisor never got the action...
    (Action.START, UNASKED, False, S, S),
    (Action.STOP, UNASKED, False, A, A),
    (Action.REBOOT, UNASKED, False, A, A),
    (Action.DELETE, UNASKED, False, A, A),
    (Action.DELETE, UNASKED, False, S, S),
    (Action.DELETE, UNASKED, False, E, E),
    (Action.STOP, UNASKED, False, "", E),  # (an operation from before previous_status was kept)
    # ... and in doubt (error) when it did.
    (Action.START, UNASKED, True, S, E),
    (Action.STOP, UNASKED, True, A, E),
    (Action.REBOOT, UNASKED, True, A, E),
    (Action.DELETE, UNASKED, True, S, E),
]  # fmt: skip


@pytest.mark.parametrize("action, answer, submitted, previous, status", FAILURE)
def test_a_failed_action_leaves_the_status_the_hypervisor_confirms(action, answer, submitted, previous, status):
    case = failure_case(action, answer)
    assert status_after_failure(**case, submitted=submitted, previous_status=previous) == status


RESYNC = [
    # status before, hypervisor's answer, status after
    (A, ON, A),
    (A, OFF, S),
    (S, ON, A),
    (E, ON, A),
    (E, OFF, S),
    (A, PAUSED, A),
    (E, UNKNOWN, E),
    (A, ABSENT, E),
    (S, ABSENT, E),
    (E, ABSENT, D),  # absent twice in a row: gone
]


@pytest.mark.parametrize("current, answer, status", RESYNC)
def test_a_resync_writes_what_the_hypervisor_says(current, answer, status):
    assert status_after_observation(current=current, observed=None if answer == ABSENT else observed(answer)) == status


# -- the same decisions, written on real rows -----------------------------------------------------


def start(vm, action, user):
    operation = services.vm_action(vm=vm, action=action, user=user)
    claim = services.operation_claim(operation_id=operation.pk, worker="w1@test")
    return claim.operation, claim.token


# Every row of the tables for an action a user starts, from every status it may start from.
SUCCESS_ROWS = [
    (action, prior, power, status)
    for action, power, status in SUCCESS
    if action != Action.CREATE
    for prior in ACTION_ALLOWED_FROM[action]
]
FAILURE_ROWS = [
    (action, prior, answer, submitted, status)
    for action, answer, submitted, prior, status in FAILURE
    if action != Action.CREATE and prior in ACTION_ALLOWED_FROM[action]
]


@pytest.mark.parametrize("action, prior, power, expected", SUCCESS_ROWS)
def test_operation_succeed_writes_status_timeline_and_quota(idle_vm, user, project, action, prior, power, expected):
    # Given an idle VM in ``prior`` and a claimed action on it
    vm = idle_vm(prior)
    operation, token = start(vm, action, user)
    used_before = ProjectQuota.objects.get(project=project).used_vms
    events_before = VMStatusEvent.objects.filter(vm=vm).count()

    # When the hypervisor reports ``power`` after the action
    assert services.operation_succeed(operation=operation, token=token, observed=observed(power))

    # Then the VM has the table's status, is idle, and the timeline has one event per change
    vm.refresh_from_db()
    assert (vm.status, vm.task_state) == (expected, None)
    new_events = VMStatusEvent.objects.filter(vm=vm).count() - events_before
    assert new_events == (1 if expected != prior else 0)
    if expected != prior:
        event = VMStatusEvent.objects.filter(vm=vm).latest("at")
        assert (event.status, event.source, event.operation_id) == (expected, "worker", operation.pk)
    released = 1 if expected == D else 0
    assert ProjectQuota.objects.get(project=project).used_vms == used_before - released
    assert vm.quota_held == (expected != D)


@pytest.mark.parametrize("action, prior, answer, submitted, expected", FAILURE_ROWS)
def test_operation_fail_writes_the_tables_status(idle_vm, user, project, action, prior, answer, submitted, expected):
    # Given an idle VM in ``prior`` and a claimed action, handed to the hypervisor or not
    vm = idle_vm(prior)
    operation, token = start(vm, action, user)
    if submitted:
        assert services.operation_record_submitted(operation=operation, token=token, task={"ref": "task-1"})
    case = failure_case(action, answer)

    # When it fails for good
    assert services.operation_fail(
        operation=operation,
        token=token,
        code="boom",
        message="Simulated",
        observed=case["observed"],
        observed_known=case["observed_known"],
    )

    # Then the VM has the table's status, is idle, and quota is held unless it is deleted
    vm.refresh_from_db()
    assert (vm.status, vm.task_state) == (expected, None)
    assert vm.quota_held == (expected != D)
    assert Operation.objects.get(pk=operation.pk).state == OperationState.FAILED


def test_a_failed_create_gives_its_quota_back_once(user, project, plan, image, simulator):
    request = services.vm_request_create(
        user=user, project=project, plan=plan, image=image, hypervisor=simulator, name="never-built"
    )
    operation = Operation.objects.get(vm__request=request)
    claim = services.operation_claim(operation_id=operation.pk, worker="w1@test")
    used = ProjectQuota.objects.get(project=project).used_vms

    services.operation_fail(operation=claim.operation, token=claim.token, code="boom", message="Simulated")

    vm = VirtualMachine.objects.get(request=request)
    assert (vm.status, vm.quota_held) == (E, False)
    assert ProjectQuota.objects.get(project=project).used_vms == used - 1
    services.vm_record_status(vm=vm, status=D, observed=None, source="test")  # deleted later: nothing more
    assert ProjectQuota.objects.get(project=project).used_vms == used - 1
