"""VM requests, approval, quotas, validation and project isolation (no worker needed:
operations are created and stay pending)."""

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.choices import Role
from accounts.models import Membership
from compute import services
from compute.models import Hypervisor, Operation, VirtualMachine, VMRequest
from tests.fixtures.factories import PlanFactory, UserFactory
from tests.fixtures.notifications import relay_here_and_send_emails


@pytest.fixture
def approval_plan(db):
    return PlanFactory(requires_approval=True)


def _post_request(api, project, plan, image, hypervisor, **extra):
    body = {
        "project": project.slug,
        "plan": plan.pk,
        "image": image.pk,
        "hypervisor": hypervisor.pk,
        "name": "db-1",
        **extra,
    }
    return api.post("/api/v1/vm-requests/", body, format="json")


def test_a_request_waits_for_approval_and_staff_approve_it(
    api, staff_api, project, approval_plan, image, simulator, django_capture_on_commit_callbacks
):
    response = _post_request(api, project, approval_plan, image, simulator)
    assert response.status_code == 201 and response.json()["status"] == "pending"
    assert project.quota.used_vms == 1  # reserved at request time
    request_id = response.json()["id"]

    # A normal user cannot approve
    assert api.post(f"/api/v1/vm-requests/{request_id}/approve/").status_code in (403, 404)

    # Staff approve: VM and its create operation exist, the requester is told
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_api.post(f"/api/v1/vm-requests/{request_id}/approve/")
    assert response.status_code == 200 and response.json()["status"] == "approved"
    vm = VirtualMachine.objects.get(request_id=request_id)
    assert (vm.status, vm.task_state) == ("building", "create")
    assert Operation.objects.get(vm=vm).state == "pending"
    relay_here_and_send_emails()
    assert mail.outbox[-1].to == [vm.owner.email] and "approved" in mail.outbox[-1].subject


def test_reject_needs_a_reason_and_gives_the_quota_back(
    api, staff_api, project, approval_plan, image, simulator, django_capture_on_commit_callbacks
):
    request_id = _post_request(api, project, approval_plan, image, simulator).json()["id"]
    response = staff_api.post(f"/api/v1/vm-requests/{request_id}/reject/", {"reason": ""}, format="json")
    assert response.status_code == 400 and "reason" in response.json()["error"]["fields"]
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_api.post(f"/api/v1/vm-requests/{request_id}/reject/", {"reason": "No budget"}, format="json")
    assert response.status_code == 200 and response.json()["reason"] == "No budget"
    project.quota.refresh_from_db()
    assert project.quota.used_vms == 0
    relay_here_and_send_emails()
    assert "No budget" in mail.outbox[-1].body


def test_cancel_by_the_requester_but_not_by_another_member(api, user, project, approval_plan, image, simulator):
    request_id = _post_request(api, project, approval_plan, image, simulator).json()["id"]
    other = UserFactory()
    Membership.objects.create(project=project, user=other, role=Role.MEMBER)
    from rest_framework.test import APIClient

    other_api = APIClient()
    other_api.force_login(other)
    assert other_api.post(f"/api/v1/vm-requests/{request_id}/cancel/").status_code == 403
    assert api.post(f"/api/v1/vm-requests/{request_id}/cancel/").json()["status"] == "cancelled"
    assert api.post(f"/api/v1/vm-requests/{request_id}/cancel/").status_code == 409


def test_quota_exceeded_is_a_clear_409(api, project, plan, image, simulator):
    project.quota = None
    from compute.models import ProjectQuota

    ProjectQuota.objects.update_or_create(project=project, defaults={"max_vms": 1})
    assert _post_request(api, project, plan, image, simulator, name="a-1").status_code == 201
    response = _post_request(api, project, plan, image, simulator, name="a-2")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "quota_exceeded"
    assert "may use 1 VMs" in response.json()["error"]["message"]


def test_names_are_unique_per_project(api, project, plan, image, simulator):
    assert _post_request(api, project, plan, image, simulator).status_code == 201
    response = _post_request(api, project, plan, image, simulator)
    assert response.status_code == 409 and response.json()["error"]["code"] == "name_taken"


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("ssh_public_key", "not a key", "OpenSSH public key"),
        ("name", "Bad_Name", "lowercase letters"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, project, plan, image, simulator, field, value, message):
    response = _post_request(api, project, plan, image, simulator, **{field: value})
    assert response.status_code == 400
    body = response.json()["error"]
    assert field in body["fields"] and message in " ".join(body["fields"][field])
    assert not VMRequest.objects.exists()


def test_an_image_missing_on_the_hypervisor_is_refused(api, project, plan, image, tmp_path):
    other = Hypervisor.objects.create(
        name="other", kind="simulator", queue="sim-test", connection={"state_path": str(tmp_path / "o.sqlite3")}
    )
    response = _post_request(api, project, plan, image, other)
    assert response.status_code == 400
    assert "not available on other" in response.json()["error"]["message"]


class TestIsolation:
    @pytest.fixture
    def vm(self, user, project, plan, image, simulator):
        request = services.vm_request_create(
            user=user, project=project, plan=plan, image=image, hypervisor=simulator, name="mine"
        )
        vm = VirtualMachine.objects.get(request=request)
        Operation.objects.filter(vm=vm).update(state="succeeded")
        VirtualMachine.objects.filter(pk=vm.pk).update(status="active", task_state=None, backend_id="sim-x")
        return vm

    @pytest.fixture
    def stranger_api(self, db):
        from rest_framework.test import APIClient

        client = APIClient()
        client.force_login(UserFactory())
        return client

    @pytest.mark.parametrize(
        "method,path",
        [
            ("get", "/api/v1/virtual-machines/{vm}/"),
            ("post", "/api/v1/virtual-machines/{vm}/stop/"),
            ("post", "/api/v1/virtual-machines/{vm}/reboot/"),
            ("delete", "/api/v1/virtual-machines/{vm}/"),
            ("get", "/api/v1/vm-requests/{request}/"),
            ("post", "/api/v1/vm-requests/{request}/cancel/"),
            ("get", "/api/v1/operations/{operation}/"),
            ("post", "/api/v1/operations/{operation}/retry/"),
        ],
    )
    def test_another_projects_objects_are_404(self, vm, stranger_api, method, path):
        url = path.format(vm=vm.pk, request=vm.request_id, operation=vm.operations.first().pk)
        assert getattr(stranger_api, method)(url).status_code == 404

    def test_lists_show_only_own_projects(self, vm, stranger_api, api):
        assert stranger_api.get("/api/v1/virtual-machines/").json()["count"] == 0
        assert api.get("/api/v1/virtual-machines/").json()["count"] == 1

    def test_a_viewer_sees_but_cannot_act(self, vm, project):
        from rest_framework.test import APIClient

        viewer = UserFactory()
        Membership.objects.create(project=project, user=viewer, role=Role.VIEWER)
        client = APIClient()
        client.force_login(viewer)
        assert client.get(f"/api/v1/virtual-machines/{vm.pk}/").status_code == 200
        response = client.post(f"/api/v1/virtual-machines/{vm.pk}/stop/")
        assert response.status_code == 403 and "member role" in response.json()["error"]["message"]

    def test_vm_list_has_a_bounded_query_count(
        self, vm, api, user, project, plan, image, simulator, django_assert_max_num_queries
    ):
        for n in range(30):
            VirtualMachine.objects.create(
                project=project,
                owner=user,
                name=f"bulk-{n}",
                plan=plan,
                image=image,
                hypervisor=simulator,
                status="active",
            )
        with django_assert_max_num_queries(6):
            response = api.get("/api/v1/virtual-machines/")
        assert response.json()["count"] == 31


class TestOperatorTools:
    def test_credentials_are_encrypted_at_rest_and_never_shown(self, admin_client, simulator):
        simulator.credentials = {"token_secret": "s3cret-value"}
        simulator.save()
        with connection.cursor() as cursor:
            cursor.execute("SELECT credentials FROM compute_hypervisor WHERE id = %s", [simulator.pk])
            raw = cursor.fetchone()[0]
        assert "s3cret" not in raw
        assert Hypervisor.objects.get(pk=simulator.pk).credentials == {"token_secret": "s3cret-value"}
        page = admin_client.get(f"/admin/compute/hypervisor/{simulator.pk}/change/")
        assert page.status_code == 200 and b"s3cret" not in page.content

    def test_admin_bulk_reject_asks_for_a_reason(self, admin_client, api, project, approval_plan, image, simulator):
        ids = [
            _post_request(api, project, approval_plan, image, simulator, name=f"r-{n}").json()["id"] for n in range(2)
        ]
        page = admin_client.post("/admin/compute/vmrequest/", {"action": "reject", "_selected_action": ids})
        assert page.status_code == 200 and b"Reject with this reason" in page.content
        admin_client.post(
            "/admin/compute/vmrequest/",
            {"action": "reject", "_selected_action": ids, "apply": "1", "reason": "Capacity"},
        )
        assert set(VMRequest.objects.values_list("status", "reason")) == {("rejected", "Capacity")}

    def test_admin_bulk_approve(self, admin_client, api, project, approval_plan, image, simulator):
        ids = [
            _post_request(api, project, approval_plan, image, simulator, name=f"a-{n}").json()["id"] for n in range(3)
        ]
        admin_client.post("/admin/compute/vmrequest/", {"action": "approve", "_selected_action": ids})
        assert VirtualMachine.objects.count() == 3
        assert Operation.objects.filter(action="create", state="pending").count() == 3

    def test_retry_command_explains_why_not(self, api, project, plan, image, simulator):
        _post_request(api, project, plan, image, simulator)
        operation = Operation.objects.get()
        with pytest.raises(CommandError, match="Only a failed operation can be retried; this one is pending"):
            call_command("operation_retry", str(operation.pk))
        call_command("operation_cancel", str(operation.pk))
        operation.refresh_from_db()
        assert operation.state == "cancelled"
        assert VirtualMachine.objects.get().status == "deleted"  # a cancelled create leaves nothing behind


def test_deleting_a_vm_needs_a_fresh_otp_when_the_user_has_2fa(user, project, plan, image, simulator):
    from django_otp.oath import totp
    from rest_framework.test import APIClient

    from accounts.models import TOTPDevice

    request = services.vm_request_create(
        user=user, project=project, plan=plan, image=image, hypervisor=simulator, name="precious"
    )
    vm = VirtualMachine.objects.get(request=request)
    Operation.objects.filter(vm=vm).update(state="succeeded")
    VirtualMachine.objects.filter(pk=vm.pk).update(status="active", task_state=None, backend_id="sim-p")
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client = APIClient()
    token_response = None
    from accounts import services as account_services

    token_response = account_services.token_create(user=user, name="ci")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_response[1]}")
    # Given a user with 2FA and an API token: the token alone cannot delete
    response = client.delete(f"/api/v1/virtual-machines/{vm.pk}/")
    assert response.status_code == 403 and response.json()["error"]["code"] == "otp_required"
    assert not Operation.objects.filter(vm=vm, action="delete").exists()
    # With a current code it can
    code = str(totp(device.bin_key, device.step, device.t0, device.digits)).zfill(device.digits)
    response = client.delete(f"/api/v1/virtual-machines/{vm.pk}/", HTTP_X_OTP_TOKEN=code)
    assert response.status_code == 202
