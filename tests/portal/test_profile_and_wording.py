"""Times on portal pages: labelled with their zone, IST by default, the user's own zone
once chosen on the Profile page (billing periods stay in IST); operation durations in
seconds; the admin's Members column; plain log lines in labelled UTC."""

import logging
from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import Project
from audit.models import AuditEvent
from compute.choices import Action, OperationState
from compute.models import Operation, VirtualMachine
from compute.templatetags.compute_portal import took
from controlplane.logging import PlainFormatter
from tests.fixtures.accounts import enrol, login_operator
from tests.fixtures.factories import UserFactory

CREATED = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


@pytest.fixture
def vm(active_vm, project, simulator):
    vm = active_vm
    VirtualMachine.objects.filter(pk=vm.pk).update(created_at=CREATED)
    Operation.objects.create(
        vm=vm,
        project=project,
        hypervisor=simulator,
        action=Action.STOP,
        state=OperationState.SUCCEEDED,
        started_at=CREATED,
        finished_at=CREATED + timedelta(seconds=4),
    )
    return vm


def vm_page(client, vm):
    return client.get(f"/projects/{vm.project.slug}/vms/{vm.pk}/").content.decode()


@pytest.mark.django_db
def test_vm_page_times_are_labelled_ist_by_default_and_follow_the_users_zone(client, user, vm):
    client.force_login(user)
    page = vm_page(client, vm)
    assert "5 Dec 2026, 15:30 IST" in page  # 10:00 UTC
    assert "took 4 s" in page and "0 minutes" not in page

    response = client.post("/accounts/profile/", {"full_name": "Ada L", "time_zone": "Europe/Berlin"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.time_zone == "Europe/Berlin"
    assert "5 Dec 2026, 11:00 CET" in vm_page(client, vm)
    event = AuditEvent.objects.get(action="user.profile_updated")
    assert event.details["time_zone"] == ["", "Europe/Berlin"]
    # The profile page shows the choice and the time now in it
    assert "CET" in client.get("/accounts/profile/").content.decode()


@pytest.mark.django_db
def test_a_zone_outside_the_tz_database_is_a_form_error(client, user):
    client.force_login(user)
    response = client.post("/accounts/profile/", {"full_name": "", "time_zone": "Mars/Olympus"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    user.refresh_from_db()
    assert user.time_zone == ""


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0 s"), (4, "4 s"), (59.6, "1 min"), (125, "2 min 5 s"), (3600 + 180, "1 h 3 min")]
)
def test_took_counts_seconds(seconds, text):
    assert took(CREATED, CREATED + timedelta(seconds=seconds)) == text


@pytest.mark.django_db
def test_admin_projects_list_shows_the_member_count(client):
    operator = UserFactory(is_staff=True, is_superuser=True)
    enrol(operator)
    login_operator(client, operator)
    team = Project.objects.create(name="Team X", slug="team-x")
    for member in (operator, UserFactory()):
        team.memberships.create(user=member, role="member")
    page = client.get("/admin/accounts/project/?q=team-x").content.decode()
    assert "accounts.User.None" not in page
    # (a search joins the memberships: the count must not double)
    assert '<td class="field-member_total">2</td>' in page


def test_plain_log_lines_are_in_labelled_utc():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    record.created = CREATED.timestamp()
    assert PlainFormatter().format(record).startswith("2026-12-05T10:00:00.000Z INFO x hello")


@pytest.mark.django_db
def test_audit_page_shows_details_as_key_value_text(client, user, project):
    import audit

    details = {"amount": "500.00", "utr": None, "at": "2026-12-05T10:00:00+00:00"}
    audit.record(actor=user, action="wallet.topup", target=project, details=details)
    audit.record(
        actor=user,
        action="project.updated",
        target=project,
        details={"name": ["", "Team X"], "require_2fa": [False, True]},
    )
    client.force_login(user)
    page = client.get(f"/projects/{project.slug}/audit/").content.decode()
    assert "<dt>Amount</dt><dd>500.00</dd>" in page
    assert "<dt>Utr</dt><dd>—</dd>" in page
    assert "<dt>At</dt><dd>5 Dec 2026, 15:30 IST</dd>" in page  # ISO times: the page's zone, labelled
    assert "<dt>Name</dt><dd>— → Team X</dd>" in page
    assert "<dt>Require 2fa</dt><dd>no → yes</dd>" in page
    assert "{&#x27;" not in page and "{'" not in page  # no Python dict reprs
