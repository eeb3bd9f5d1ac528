"""The VM action path in one statement when all goes well (issue 25, compute/services/vms.py
``vm_take_for_action``): every refusal keeps the answer the old path gave (status, code,
message, and nothing written), the one-active-operation constraint still answers a 409
without a savepoint, and the callers without a request (billing, user=None) still work."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.choices import Role
from accounts.models import Membership, Project
from audit.models import AuditEvent
from audit.selectors import chain_verify
from compute import services
from compute.choices import Action
from compute.models import Operation, VirtualMachine
from compute.services.operations import operation_create
from controlplane.errors import Conflict
from tests.fixtures.factories import UserFactory

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def member(project, role) -> APIClient:
    user = UserFactory()
    Membership.objects.create(project=project, user=user, role=role)
    return client_for(user)


def error(status, code, message):
    return status, {"error": {"code": code, "message": message, "fields": {}}}


NOT_FOUND = error(404, "not_found", "Not found.")
SET_UP = "set it up to continue."


def refusals(project, vm, stopped, staff_api, user):
    """(what, the state to set first, the client, the action's path, the answer the old path gave)."""
    name, mine, without_2fa = project.name, client_for(user), member(project, Role.MEMBER)
    reboot = f"/api/v1/virtual-machines/{vm.pk}/reboot/"

    def in_project(**fields):
        return lambda: Project.objects.filter(pk=project.pk).update(**fields)

    def busy():
        VirtualMachine.objects.filter(pk=vm.pk).update(task_state=Action.SNAPSHOT_CREATE)

    return [
        ("not a member", None, client_for(UserFactory()), reboot, NOT_FOUND),
        ("a viewer", None, member(project, Role.VIEWER), reboot,
         error(403, "forbidden", f"This needs the member role in project {name}; you are viewer.")),
        ("an operator who is not a member", None, staff_api, reboot, error(404, "not_found", "No such project.")),
        ("no such VM", None, mine, "/api/v1/virtual-machines/1000000/reboot/", NOT_FOUND),
        ("an id out of range", None, mine, f"/api/v1/virtual-machines/{'9' * 30}/reboot/", NOT_FOUND),
        ("an id that is no number", None, mine, "/api/v1/virtual-machines/abc/reboot/", NOT_FOUND),
        ("a query string the list's filter refuses", None, mine, f"{reboot}?status=stopped", NOT_FOUND),
        ("a status the action is not allowed from", None, mine, f"/api/v1/virtual-machines/{stopped.pk}/reboot/",
         error(409, "conflict", "Cannot reboot vm-stopped: it is stopped.")),
        ("a project requiring 2FA of a member without", in_project(require_2fa=True), without_2fa, reboot,
         error(403, "two_factor_required", f"Project {name} requires two-factor authentication: {SET_UP}")),
        ("a suspended project", in_project(require_2fa=False, suspended_at=timezone.now(), suspended_reason="unpaid"),
         mine, reboot, error(409, "project_suspended", f"Project {name} is suspended: unpaid.")),
        ("a busy VM", busy, mine, f"/api/v1/virtual-machines/{vm.pk}/stop/",
         error(409, "conflict", "Cannot stop vm-active: it is busy (snapshot in progress); wait for it to finish.")),
    ]  # fmt: skip


def test_every_refusal_is_the_old_answer_and_writes_nothing(idle_vm, user, project, staff_api):
    vm, stopped = idle_vm("active"), idle_vm("stopped")
    vm_events = AuditEvent.objects.filter(action__startswith="vm.")
    for what, given, client, path, (status, body) in refusals(project, vm, stopped, staff_api, user):
        if given is not None:
            given()
        operations, events = Operation.objects.count(), vm_events.count()
        task_state = VirtualMachine.objects.get(pk=vm.pk).task_state

        response = client.post(path)

        assert (response.status_code, response.json()) == (status, body), what
        assert Operation.objects.count() == operations, what
        assert vm_events.count() == events, what
        assert VirtualMachine.objects.get(pk=vm.pk).task_state == task_state, what


def test_a_stop_of_a_suspended_project_s_vm_is_taken(idle_vm, user, project, api):
    vm = idle_vm("active")
    Project.objects.filter(pk=project.pk).update(suspended_at=timezone.now(), suspended_reason="unpaid")
    response = api.post(f"/api/v1/virtual-machines/{vm.pk}/stop/")
    assert response.status_code == 202
    assert response.json()["operation"]["vm_name"] == "vm-active"


def test_a_take_gives_what_the_locked_read_gave(idle_vm, user, project, api):
    vm = idle_vm("active")

    response = api.post(f"/api/v1/virtual-machines/{vm.pk}/reboot/")

    # The answer names the VM and hypervisor, the operation remembers the status it came from,
    # the audit event names the VM in its project, and the chain holds
    body = response.json()["operation"]
    assert (response.status_code, body["vm_name"], body["hypervisor"]) == (202, "vm-active", vm.hypervisor.name)
    operation = Operation.objects.get(pk=body["id"])
    assert (operation.previous_status, operation.requested_by, operation.state) == ("active", user, "pending")
    event = AuditEvent.objects.get(action="vm.reboot.requested")
    assert (event.target_repr, event.project_id, event.actor_user_id) == ("vm-active", project.pk, user.pk)
    assert event.details == {"operation": operation.pk}
    assert VirtualMachine.objects.get(pk=vm.pk).task_state == "reboot"
    assert chain_verify().ok


def test_the_service_path_reads_nothing_more_after_the_take(idle_vm, user):
    vm = idle_vm("active")
    with transaction.atomic():
        taken = services.vm_take_for_action(vm_id=vm.pk, action=Action.STOP, user=user)
        with CaptureQueriesContext(connection) as ctx:
            seen = (taken.name, taken.status, taken.task_state, taken.project.name, taken.hypervisor.queue)
    assert seen == ("vm-active", "active", "stop", vm.project.name, vm.hypervisor.queue)
    assert ctx.captured_queries == []


def test_the_constraint_still_answers_and_leaves_the_transaction_usable(idle_vm, user):
    vm = idle_vm("active")
    # Given an active operation on a VM whose task_state is clear (made inconsistent on purpose)
    Operation.objects.filter(pk=vm.operations.latest("id").pk).update(state="pending")

    # A caller that goes on after the Conflict (as billing's suspension does) can
    with transaction.atomic():
        with CaptureQueriesContext(connection) as ctx, pytest.raises(Conflict, match="Another operation"):
            operation_create(vm=vm, action=Action.STOP, requested_by=user)
        assert VirtualMachine.objects.filter(pk=vm.pk).exists()  # no "current transaction is aborted"
    assert not any(q["sql"].startswith("SAVEPOINT") for q in ctx.captured_queries)

    # And through vm_action (and the API) it is the 409 it was, with nothing left behind
    with pytest.raises(Conflict, match="Another operation is already in progress on vm-active"):
        services.vm_action(vm=vm, action=Action.STOP, user=user)
    assert VirtualMachine.objects.get(pk=vm.pk).task_state is None
    assert Operation.objects.filter(vm=vm, action=Action.STOP).count() == 0


def test_a_second_provision_is_a_conflict_and_the_first_stays(idle_vm, user, project):
    vm = idle_vm("active")
    with transaction.atomic():
        first = operation_create(vm=None, action=Action.PROVISION, project=project, hypervisor=vm.hypervisor)
        with pytest.raises(Conflict, match="already in progress on this project"):
            operation_create(vm=None, action=Action.PROVISION, project=project, hypervisor=vm.hypervisor)
        assert Operation.objects.filter(action=Action.PROVISION).get().pk == first.pk


def test_a_system_caller_without_a_user_takes_any_vm(idle_vm, project):
    vm, stopped = idle_vm("active"), idle_vm("stopped")
    Project.objects.filter(pk=project.pk).update(suspended_at=timezone.now(), suspended_reason="unpaid")

    stop = services.vm_action(vm=vm, action=Action.STOP, actor="system:billing")
    with pytest.raises(Conflict, match="is suspended"):
        services.vm_action(vm=stopped, action=Action.START, actor="system:billing")

    assert (stop.requested_by, VirtualMachine.objects.get(pk=vm.pk).task_state) == (None, "stop")
    assert AuditEvent.objects.get(action="vm.stop.requested").actor == "system:billing"
    assert VirtualMachine.objects.get(pk=stopped.pk).task_state is None


def test_a_delete_s_wrong_code_is_counted_though_the_delete_is_refused(idle_vm, user_2fa, token_client):
    from accounts import services as accounts
    from accounts.models import TOTPDevice

    vm = idle_vm("active")
    client = token_client(accounts.token_create(user=user_2fa, name="ci")[1])

    response = client.delete(f"/api/v1/virtual-machines/{vm.pk}/", HTTP_X_OTP_TOKEN="000000")

    # The two-factor check runs before the action's transaction: its throttling is not rolled back
    assert (response.status_code, response.json()["error"]["code"]) == (403, "otp_required")
    assert TOTPDevice.objects.get(user=user_2fa).throttling_failure_count == 1
    assert VirtualMachine.objects.get(pk=vm.pk).task_state is None
