"""Every operator change through Django admin is audited (actor, address, user agent,
request id, changed fields with secrets masked); the admin's code check records failures;
events a service records without the request still carry the request's metadata."""

import re
from html.parser import HTMLParser

import pytest
from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client
from rest_framework.test import APIClient

from accounts.admin_site import AdminSite
from accounts.models import Project
from audit.admin_mixins import MASK, AuditedAdminMixin
from audit.models import AuditEvent
from compute.models import Hypervisor, Plan
from tests.fixtures.accounts import PASSWORD, enrol, login_operator
from tests.fixtures.factories import HypervisorFactory, PlanFactory, UserFactory

AGENT = "OpsBrowser/1.0"


class _FormFields(HTMLParser):
    """The data a browser would submit from the page's main form (inputs, checked
    boxes, selected options, textareas), so the test posts what the admin rendered."""

    def __init__(self):
        super().__init__()
        self.data: dict[str, list[str]] = {}
        self._select = self._textarea = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "button", "file"):
            if attrs.get("type") in ("checkbox", "radio") and "checked" not in attrs:
                return
            self.data.setdefault(name, []).append(attrs.get("value", "on" if attrs.get("type") == "checkbox" else ""))
        elif tag == "select" and name:
            self._select = name
            self.data.setdefault(name, [])
        elif tag == "option" and self._select and "selected" in attrs:
            self.data[self._select].append(attrs.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = [""]

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea][0] += data.lstrip("\n") if not self.data[self._textarea][0] else data

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def _change(client, url: str, **changes):
    parser = _FormFields()
    parser.feed(client.get(url).content.decode())
    data = {name: values for name, values in parser.data.items() if name != "csrfmiddlewaretoken"}
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value if isinstance(value, list) else [value]
    data["_save"] = ["Save"]
    return client.post(url, data, HTTP_USER_AGENT=AGENT, REMOTE_ADDR="198.51.100.20")


@pytest.fixture
def operator(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def ops(operator):
    return login_operator(Client(), operator)


def test_every_registered_model_admin_is_audited():
    unaudited = [
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, AuditedAdminMixin)
    ]
    assert unaudited == []
    # Registering a plain ModelAdmin later is audited too
    site = AdminSite(name="probe")
    site.register(Group)
    assert isinstance(site._registry[Group], AuditedAdminMixin)


@pytest.mark.django_db
def test_granting_staff_is_audited_with_the_fields_and_the_request(ops, operator):
    person = UserFactory(email="person@example.com")
    response = _change(ops, f"/admin/accounts/user/{person.pk}/change/", is_staff="on")
    assert response.status_code == 302, response.content[:2000]
    person.refresh_from_db()
    assert person.is_staff
    event = AuditEvent.objects.get(action="admin.action", target_id=str(person.pk))
    assert event.details["operation"] == "change" and event.details["model"] == "accounts.user"
    assert event.details["fields"] == {"is_staff": [False, True]}
    assert (event.actor_user_id, event.ip_address, event.user_agent) == (operator.pk, "198.51.100.20", AGENT)
    assert re.fullmatch(r"[0-9a-f]{32}", event.request_id)
    privileges = AuditEvent.objects.get(action="user.privileges_changed")
    assert privileges.details == {"is_staff": [False, True]} and privileges.request_id == event.request_id


@pytest.mark.django_db
def test_changing_hypervisor_credentials_is_hypervisor_changed_with_the_secret_masked(ops):
    hypervisor = HypervisorFactory(credentials={"token_secret": "old-secret"})
    response = _change(
        ops, f"/admin/compute/hypervisor/{hypervisor.pk}/change/", new_credentials='{"token_secret": "NEW-s3cret"}'
    )
    assert response.status_code == 302
    assert Hypervisor.objects.get(pk=hypervisor.pk).credentials == {"token_secret": "NEW-s3cret"}
    event = AuditEvent.objects.get(action="hypervisor.changed")
    assert event.details["fields"] == {"new_credentials": [MASK, MASK]}
    assert "s3cret" not in str(AuditEvent.objects.values_list("details", flat=True))


@pytest.mark.django_db
def test_one_change_per_app_is_audited(ops, operator):
    # compute: a plan's price
    plan = PlanFactory()
    assert _change(ops, f"/admin/compute/plan/{plan.pk}/change/", price_hourly_running="9.5000").status_code == 302
    assert Plan.objects.get(pk=plan.pk).price_hourly_running == 9.5
    event = AuditEvent.objects.get(action="admin.action", details__model="compute.plan")
    assert event.details["fields"]["price_hourly_running"][1] == "9.5000"
    # billing: the supplier's settings
    assert ops.get("/admin/billing/billingsettings/").status_code == 302
    settings_url = ops.get("/admin/billing/billingsettings/")["Location"]
    assert _change(ops, settings_url, trade_name="Twarga Cloud").status_code == 302
    event = AuditEvent.objects.get(action="admin.action", details__model="billing.billingsettings")
    assert event.details["fields"]["trade_name"][1] == "Twarga Cloud"
    # accounts: a project's name
    project = UserFactory().projects.get()
    _change(ops, f"/admin/accounts/project/{project.pk}/change/", name="Renamed by ops")
    assert Project.objects.get(pk=project.pk).name == "Renamed by ops"
    assert AuditEvent.objects.filter(action="admin.action", details__model="accounts.project").exists()
    # auth (Django's own): a group added
    ops.post("/admin/auth/group/add/", {"name": "auditors"}, HTTP_USER_AGENT=AGENT)
    assert AuditEvent.objects.get(action="admin.action", details__model="auth.group").details["operation"] == "add"
    # axes (third party): a lockout deleted through the delete action
    attempt = AccessAttempt.objects.create(username="x@example.com", ip_address="192.0.2.1", failures_since_start=5)
    ops.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"},
        HTTP_USER_AGENT=AGENT,
    )
    assert not AccessAttempt.objects.exists()
    action = AuditEvent.objects.get(action="admin.action", details__operation="action")
    assert action.details["admin_action"] == "delete_selected" and action.details["objects"] == [str(attempt.pk)]
    deleted = AuditEvent.objects.get(action="admin.action", details__operation="delete")
    assert deleted.details["model"] == "axes.accessattempt"
    assert all(e.actor_user_id == operator.pk for e in AuditEvent.objects.filter(action="admin.action"))


@pytest.mark.django_db
def test_a_wrong_code_on_the_admin_login_form_is_recorded():
    staff = UserFactory(is_staff=True, is_superuser=True)
    codes = enrol(staff)
    client = Client(HTTP_USER_AGENT=AGENT)
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": staff.email, "password": PASSWORD, "otp_device": codes.device.persistent_id, "otp_token": "1"},
    )
    assert response.status_code == 200
    event = AuditEvent.objects.get(action="auth.login.failed")
    assert event.details == {"login": staff.email, "reason": "otp"} and event.user_agent == AGENT
    assert event.ip_address == "127.0.0.1" and event.request_id == response["X-Request-ID"]


@pytest.mark.django_db
def test_events_services_record_without_the_request_still_carry_it(user):
    client = APIClient(HTTP_USER_AGENT=AGENT)
    client.force_login(user)
    # project_create is called by the API view without the request
    response = client.post("/api/v1/projects/", {"name": "Side project"}, format="json")
    assert response.status_code == 201
    event = AuditEvent.objects.get(action="project.created", details__name="Side project")
    assert (event.user_agent, event.ip_address) == (AGENT, "127.0.0.1")
    assert event.request_id == response["X-Request-ID"]
