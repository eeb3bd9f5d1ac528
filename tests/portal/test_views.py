"""Portal pages: isolation, service errors as messages (never a 500), power
actions, delete with a fresh 2FA code, retry, request cancel, the wizard's
checks, polling only while something runs, sessions, the admin's landing page
and suspension."""

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages

from accounts.choices import Role
from accounts.models import UserSession
from audit.models import AuditEvent
from billing.services import project_suspend, project_unsuspend
from compute.choices import Action, OperationState, RequestStatus, VMStatus
from compute.models import Operation, ProjectQuota, VirtualMachine, VMRequest
from controlplane.errors import Conflict
from tests.fixtures.accounts import add_member, enrol, login_operator, login_verified
from tests.fixtures.factories import ImageFactory, PlanFactory, UserFactory


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def vm(active_vm):
    return active_vm


@pytest.fixture
def member_client(client, user, project):
    client.force_login(user)
    return client


def url(project, tail=""):
    return f"/projects/{project.slug}/{tail}"


class TestIsolation:
    def test_another_projects_vm_and_request_are_404_everywhere(self, client, vm, project):
        stranger = UserFactory()
        client.force_login(stranger)
        own = stranger.projects.get()
        vm_request = VMRequest.objects.create(
            project=project, requester=vm.owner, plan=vm.plan, image=vm.image, hypervisor=vm.hypervisor, name="x"
        )
        op = Operation.objects.create(
            vm=vm, project=project, hypervisor=vm.hypervisor, action="start", state=OperationState.FAILED
        )
        for path in (f"vms/{vm.pk}/", "vms/", "dashboard/", "requests/", "requests/new/"):
            assert client.get(url(project, path)).status_code == 404, path
        assert client.get(url(own, f"vms/{vm.pk}/")).status_code == 404  # through one's own project too
        for path in (
            f"vms/{vm.pk}/power/",
            f"vms/{vm.pk}/delete/",
            f"operations/{op.pk}/retry/",
            f"operations/{op.pk}/cancel/",
            f"requests/{vm_request.pk}/cancel/",
        ):
            assert client.post(url(own, path), {"action": "stop", "confirm_name": "web-1"}).status_code == 404
            assert client.post(url(project, path), {"action": "stop", "confirm_name": "web-1"}).status_code == 404
        assert not Operation.objects.filter(vm=vm).exclude(pk=op.pk).exists()
        assert VMRequest.objects.get(pk=vm_request.pk).status == RequestStatus.PENDING

    def test_a_viewer_sees_but_cannot_act(self, client, vm, project):
        viewer = add_member(project, UserFactory(), Role.VIEWER).user
        client.force_login(viewer)
        page = client.get(url(project, f"vms/{vm.pk}/")).content.decode()
        assert "web-1" in page and "Stop now" not in page and "Delete web-1" not in page
        assert client.post(url(project, f"vms/{vm.pk}/power/"), {"action": "stop"}).status_code == 403
        assert client.get(url(project, "requests/new/")).status_code == 403
        assert not Operation.objects.filter(vm=vm).exists()


class TestVMActions:
    def test_stop_creates_the_operation_and_the_page_polls_until_it_ends(self, member_client, vm, project):
        idle = member_client.get(url(project, f"vms/{vm.pk}/")).content.decode()
        assert "hx-trigger" not in idle  # nothing runs: no polling

        response = member_client.post(url(project, f"vms/{vm.pk}/power/"), {"action": "stop"})

        assert response.status_code == 302 and response["Location"] == url(project, f"vms/{vm.pk}/")
        op = Operation.objects.get(vm=vm, action=Action.STOP)
        assert op.state == OperationState.PENDING and op.requested_by == vm.owner
        busy = member_client.get(response["Location"]).content.decode()
        assert 'hx-trigger="every 2s"' in busy and "Stop in progress" in busy
        fragment = member_client.get(response["Location"], headers={"HX-Request": "true"}).content.decode()
        assert fragment.lstrip().startswith(('<div id="live-announce"', '<div id="vm-live"'))
        assert 'hx-trigger="every 2s"' in fragment

        # When the operation finishes, the fragment stops polling
        Operation.objects.filter(pk=op.pk).update(state=OperationState.SUCCEEDED)
        VirtualMachine.objects.filter(pk=vm.pk).update(task_state=None, status=VMStatus.STOPPED)
        done = member_client.get(response["Location"], headers={"HX-Request": "true"}).content.decode()
        assert "hx-trigger" not in done and "Stopped" in done

    def test_a_conflict_is_a_message_not_a_500(self, member_client, vm, project):
        VirtualMachine.objects.filter(pk=vm.pk).update(status=VMStatus.STOPPED)
        page = url(project, f"vms/{vm.pk}/")
        response = member_client.post(url(project, f"vms/{vm.pk}/power/"), {"action": "stop"}, HTTP_REFERER=page)
        assert response.status_code == 302 and response["Location"] == page
        assert messages_of(response) == ["Cannot stop web-1: it is stopped."]
        bad = member_client.post(url(project, f"vms/{vm.pk}/power/"), {"action": "explode"}, HTTP_REFERER=page)
        assert bad.status_code == 302 and "Choose start, stop or reboot." in messages_of(bad)

    def test_suspended_project_start_is_refused_with_the_reason(self, member_client, vm, project):
        VirtualMachine.objects.filter(pk=vm.pk).update(status=VMStatus.STOPPED)
        project_suspend(project=project, actor="system:tests", reason="Abuse report #12")
        response = member_client.post(url(project, f"vms/{vm.pk}/power/"), {"action": "start"}, follow=True)
        assert "Abuse report #12" in response.content.decode()
        assert not Operation.objects.filter(vm=vm, action=Action.START).exists()

    def test_delete_needs_a_fresh_code_and_the_name(self, client, user, vm, project):
        codes = enrol(user)
        login_verified(client, user, codes.device, recent=False)
        page = url(project, f"vms/{vm.pk}/")
        assert 'name="otp_token"' in client.get(page).content.decode()  # the form asks for a code

        # Without a code: sent to the code page, nothing done
        response = client.post(url(project, f"vms/{vm.pk}/delete/"), {"confirm_name": "web-1"}, HTTP_REFERER=page)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/2fa/verify/")
        # With a code but the wrong name: a message, nothing done
        response = client.post(
            url(project, f"vms/{vm.pk}/delete/"),
            {"confirm_name": "web-2", "otp_token": codes.next()},
            HTTP_REFERER=page,
        )
        assert "Type the VM's name (web-1) to confirm the deletion." in messages_of(response)
        assert not Operation.objects.filter(vm=vm).exists()
        # The code just given is recent: the name is enough now
        response = client.post(url(project, f"vms/{vm.pk}/delete/"), {"confirm_name": "web-1"})
        assert response.status_code == 302
        assert Operation.objects.get(vm=vm).action == Action.DELETE

    def test_retry_of_the_failed_operation_and_cancel_of_a_pending_one(self, member_client, vm, project):
        VirtualMachine.objects.filter(pk=vm.pk).update(status=VMStatus.ERROR)
        failed = Operation.objects.create(
            vm=vm,
            project=project,
            hypervisor=vm.hypervisor,
            action=Action.START,
            state=OperationState.FAILED,
            attempts=5,
            error_message="node down",
        )
        page = member_client.get(url(project, f"vms/{vm.pk}/")).content.decode()
        assert "node down" in page and "Retry start" in page

        member_client.post(url(project, f"operations/{failed.pk}/retry/"))

        failed.refresh_from_db()
        assert failed.state == OperationState.PENDING and failed.attempts == 0
        assert VirtualMachine.objects.get(pk=vm.pk).task_state == Action.START
        member_client.post(url(project, f"operations/{failed.pk}/cancel/"))
        assert Operation.objects.get(pk=failed.pk).state == OperationState.CANCELLED
        again = member_client.post(url(project, f"operations/{failed.pk}/cancel/"), follow=True)
        assert again.status_code == 200 and "Only a pending operation can be cancelled" in again.content.decode()


class TestRequests:
    def test_cancel_frees_the_quota(self, member_client, project, plan, image, simulator, user):
        from compute import services

        vm_request = services.vm_request_create(
            user=user,
            project=project,
            plan=PlanFactory(requires_approval=True),
            image=image,
            hypervisor=simulator,
            name="later",
        )
        assert ProjectQuota.objects.get(project=project).used_vms == 1
        page = member_client.get(url(project, "requests/")).content.decode()
        assert "Pending approval" in page and "Cancel the request for later" in page
        response = member_client.post(url(project, f"requests/{vm_request.pk}/cancel/"))
        assert response.status_code == 302
        assert VMRequest.objects.get(pk=vm_request.pk).status == RequestStatus.CANCELLED
        assert ProjectQuota.objects.get(project=project).used_vms == 0

    def test_a_pending_request_refreshes_until_an_operator_decides(
        self, member_client, project, image, simulator, user
    ):
        from compute import services

        simulator.queue = "nobody-serves-this"
        simulator.save()
        vm_request = services.vm_request_create(
            user=user,
            project=project,
            plan=PlanFactory(requires_approval=True),
            image=image,
            hypervisor=simulator,
            name="awaited",
        )
        page = member_client.get(url(project, "requests/")).content.decode()
        assert 'id="request-table" hx-get=' in page and 'hx-trigger="every 3s"' in page
        waiting = member_client.get(url(project, "requests/"), headers={"HX-Request": "true"}).content.decode()
        assert waiting.lstrip().startswith('<div id="request-table"') and "Pending approval" in waiting

        # An operator approves: the next refresh shows it (with a link to the VM) and stops polling
        vm = services.vm_request_approve_as_staff(
            vm_request=vm_request, actor=UserFactory(is_staff=True, is_superuser=True)
        )
        decided = member_client.get(url(project, "requests/"), headers={"HX-Request": "true"}).content.decode()
        assert "hx-trigger" not in decided and "Approved" in decided
        assert f"/vms/{vm.pk}/" in decided


class TestWizard:
    def post(self, client, project, step="review", **data):
        return client.post(url(project, "requests/new/"), {"step": step, **data})

    def data(self, plan, image, simulator, **extra):
        return {"plan": plan.pk, "image": image.pk, "hypervisor": simulator.pk, "name": "app-1", **extra}

    def test_prices_with_gst_then_review_then_confirm(self, member_client, project, plan, image, simulator):
        from billing.selectors import plan_price_for_project

        price = plan_price_for_project(plan=plan, project=project).running
        assert price.taxable == Decimal("1.50") and price.tax > 0
        choose = member_client.get(url(project, "requests/new/")).content.decode()
        assert f"₹{price.total}/hour" in choose

        review = self.post(member_client, project, **self.data(plan, image, simulator))
        body = review.content.decode()
        assert review.status_code == 200 and "Review your request" in body
        assert "₹1.50" in body and f"₹{price.tax}" in body and f"₹{price.total}" in body
        assert "Quota and balance are fine" in body and 'value="confirm"' in body

        done = self.post(member_client, project, step="confirm", **self.data(plan, image, simulator))
        vm = VirtualMachine.objects.get(project=project, name="app-1")  # the plan needs no approval
        assert done.status_code == 302 and done["Location"] == url(project, f"vms/{vm.pk}/")

    def test_quota_and_balance_problems_are_shown_before_confirming(
        self, member_client, project, plan, image, simulator
    ):
        ProjectQuota.objects.update_or_create(project=project, defaults={"max_vms": 0})
        pricey = PlanFactory(price_hourly_running=Decimal("900.0000"))
        body = self.post(member_client, project, **self.data(pricey, image, simulator)).content.decode()
        assert "Quota: Project" in body and "may use 0 VMs" in body
        assert "Balance: A " in body and "Top up at least" in body
        assert 'value="confirm" class="primary" disabled' in body

    def test_service_errors_land_on_the_form(self, member_client, project, plan, image, simulator):
        container = ImageFactory(guest_type="container")
        response = self.post(member_client, project, step="confirm", **self.data(plan, container, simulator))
        body = response.content.decode()
        assert response.status_code == 200 and "cannot be used with plan" in body
        bad_key = self.post(member_client, project, **self.data(plan, image, simulator, ssh_public_key="not a key"))
        assert "Paste one OpenSSH public key" in bad_key.content.decode()
        bad_name = self.post(member_client, project, **self.data(plan, image, simulator, name="Bad Name"))
        assert "Use 1-63 lowercase letters" in bad_name.content.decode()
        assert not VMRequest.objects.filter(project=project).exists()

    def test_a_taken_name_is_a_field_error(self, member_client, project, plan, image, simulator, vm):
        response = self.post(member_client, project, step="confirm", **self.data(plan, image, simulator, name="web-1"))
        assert response.status_code == 200
        assert response.context["form"].errors["name"] == [
            f"A VM or pending request named 'web-1' already exists in {project.name}."
        ]


class TestDashboardAndNavigation:
    def test_dashboard_counts_and_the_switcher_keeps_the_section(self, member_client, vm, project, user):
        body = member_client.get(url(project, "dashboard/")).content.decode()
        assert "₹10,000.00" in body and "Recent operations" in body
        team = UserFactory().projects.get()
        add_member(team, user, Role.MEMBER)
        response = member_client.get("/switch/", {"project": team.slug, "section": "vms"})
        assert response["Location"] == url(team, "vms/")
        assert member_client.get("/")["Location"] == url(team, "dashboard/")  # remembered
        stranger = UserFactory().projects.get()
        assert member_client.get("/switch/", {"project": stranger.slug})["Location"] == "/"


class TestSessions:
    def test_sessions_are_listed_and_others_revoked(self, client, user, settings):
        from django.test import Client

        settings.SESSION_TOUCH_SECONDS = 0
        other = Client(HTTP_USER_AGENT="Firefox on the office PC")
        other.force_login(user)
        other.get("/accounts/2fa/")
        client.force_login(user)
        page = client.get("/accounts/sessions/").content.decode()
        assert "Firefox on the office PC" in page and "this browser" in page
        theirs = UserSession.objects.get(user_agent="Firefox on the office PC")
        mine = UserSession.objects.exclude(pk=theirs.pk).get(user=user)

        client.post(f"/accounts/sessions/{theirs.pk}/revoke/")

        assert other.get("/accounts/2fa/").status_code == 302  # logged out
        assert AuditEvent.objects.filter(action="auth.session.revoked", actor_user_id=user.pk).exists()
        response = client.post(f"/accounts/sessions/{mine.pk}/revoke/", HTTP_REFERER="/accounts/sessions/", follow=True)
        assert "log out instead" in response.content.decode()
        stranger = UserFactory()
        client.force_login(stranger)
        assert client.post(f"/accounts/sessions/{mine.pk}/revoke/").status_code == 404


class TestOperators:
    def test_admin_landing_lists_what_needs_attention_with_links(
        self, client, vm, project, simulator, django_assert_max_num_queries
    ):
        operator = UserFactory(is_staff=True, is_superuser=True)
        login_operator(client, operator)
        VirtualMachine.objects.filter(pk=vm.pk).update(lost_at="2025-01-01T00:00Z", missing_since="2025-01-01T00:00Z")
        simulator.maintenance = True
        simulator.save()
        project_suspend(project=project, actor="system:tests", reason="Chargeback")
        client.get("/admin/")
        with django_assert_max_num_queries(25):
            body = client.get("/admin/").content.decode()
        assert "Needs attention" in body and "Chargeback" in body and simulator.name in body
        assert "/admin/compute/virtualmachine/?lost_at__isempty=0" in body
        assert "/admin/compute/vmrequest/?status__exact=pending" in body
        assert "/admin/accounts/project/?suspended_at__isempty=0" in body
        assert "/admin/compute/hypervisor/?maintenance__exact=1" in body
        assert client.get("/admin/compute/virtualmachine/?lost_at__isempty=0").status_code == 200

    def test_suspend_asks_for_a_reason_stops_vms_and_unsuspend_lifts(self, client, vm, project):
        operator = UserFactory(is_staff=True, is_superuser=True)
        login_operator(client, operator)
        changelist = "/admin/accounts/project/"
        form = client.post(changelist, {"action": "suspend", "_selected_action": [project.pk]})
        assert form.status_code == 200 and "Suspend with this reason" in form.content.decode()
        client.post(
            changelist,
            {"action": "suspend", "_selected_action": [project.pk], "apply": "1", "reason": "Abuse report #7"},
        )
        project.refresh_from_db()
        assert project.is_suspended and project.suspended_reason == "Abuse report #7"
        assert Operation.objects.get(vm=vm).action == Action.STOP
        event = AuditEvent.objects.get(action="project.suspended")
        assert event.actor_user_id == operator.pk and event.details["stopped_vms"] == [vm.pk]

        client.post(changelist, {"action": "unsuspend", "_selected_action": [project.pk]})

        project.refresh_from_db()
        assert not project.is_suspended
        assert AuditEvent.objects.filter(action="project.unsuspended", actor_user_id=operator.pk).exists()

    def test_a_negative_wallet_suspension_is_lifted_by_money_not_by_the_button(self, project):
        from billing.models import Wallet

        project_suspend(project=project, actor="system:tests", reason="x")
        Wallet.objects.filter(project=project).update(suspended_by_billing=True, balance=Decimal("-5.00"))
        with pytest.raises(Conflict, match="top up or adjust"):
            project_unsuspend(project=project, actor="system:tests")
        with pytest.raises(Conflict, match="already suspended"):
            project_suspend(project=project, actor="system:tests", reason="again")
