"""Operators' admin (read-only, filters, export), the project portal page and the API."""

import csv
import io
import json

import pytest
from django.urls import reverse

import audit
from accounts.models import User
from audit.models import AuditEvent
from tests.fixtures.accounts import login_operator
from tests.fixtures.factories import UserFactory

CHANGELIST = "/admin/audit/auditevent/"


@pytest.fixture
def operator(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def other_project(db):
    return UserFactory().projects.get()


@pytest.fixture
def project_events(team, other_project):
    mine = [
        audit.record(actor=team.owner, action="vm.create.requested", project=team.project, details={"n": i})
        for i in range(3)
    ]
    audit.record(actor="worker:hv-1", action="vm.create.succeeded", project=team.project)
    audit.record(actor="system", action="wallet.debited", project=other_project, details={"secret": "other"})
    return mine


# --- Admin -------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?actor_kind=user",
        "?actor_kind=worker",
        "?actor_kind=system",
        "?action_group=vm",
        "?action=vm.create.succeeded",
        "?target_type=accounts.project",
        "?created_at__gte=2020-01-01T00:00:00%2B00:00",
        "?q=hv-1",
        "?q=other",
    ],
)
def test_admin_list_filters_and_search(client, operator, project_events, query, django_assert_max_num_queries):
    login_operator(client, operator)
    with django_assert_max_num_queries(15):
        response = client.get(CHANGELIST + query)
    assert response.status_code == 200


def test_admin_filters_select_the_right_events(client, operator, project_events, team):
    login_operator(client, operator)
    response = client.get(CHANGELIST + f"?actor_kind=worker&project__id__exact={team.project.pk}")
    assert list(response.context["cl"].result_list) == list(AuditEvent.objects.filter(actor="worker:hv-1"))


def test_admin_is_read_only(client, operator, project_events):
    login_operator(client, operator)
    event = project_events[0]
    assert client.get(CHANGELIST + "add/").status_code == 403
    assert client.get(CHANGELIST + f"{event.pk}/delete/").status_code == 403
    page = client.get(CHANGELIST + f"{event.pk}/change/")
    assert page.status_code == 200 and b"Save" not in page.content
    assert client.post(CHANGELIST + f"{event.pk}/change/", {"actor": "x"}).status_code == 403
    actions = [name for name, _ in client.get(CHANGELIST).context["action_form"].fields["action"].choices]
    assert actions == ["", "export_csv", "export_jsonl"]


def _export(client, action, events):
    data = {"action": action, "_selected_action": [e.pk for e in events]}
    response = client.post(CHANGELIST, data, REMOTE_ADDR="198.51.100.4")
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode()


def test_admin_exports_csv_and_records_who_exported(client, operator, project_events):
    login_operator(client, operator)

    rows = list(csv.DictReader(io.StringIO(_export(client, "export_csv", project_events))))

    assert [int(row["id"]) for row in rows] == [e.pk for e in project_events]
    assert json.loads(rows[0]["details"]) == {"n": 0} and rows[0]["hash"] == project_events[0].hash
    export_event = AuditEvent.objects.order_by("-id").first()
    assert (export_event.action, export_event.actor, export_event.ip_address) == (
        "admin.action",
        operator.email,
        "198.51.100.4",
    )
    assert export_event.details == {"operation": "export", "model": "audit.auditevent", "format": "csv", "events": 3}


def test_admin_exports_json_lines(client, operator, project_events):
    login_operator(client, operator)
    lines = [json.loads(line) for line in _export(client, "export_jsonl", project_events).splitlines()]
    assert [line["hash"] for line in lines] == [e.hash for e in project_events]


def test_audited_admin_mixin_records_changes_made_in_admin(client, operator, rf):
    from django.contrib import admin

    from accounts.models import Project
    from audit.admin import AuditedAdminMixin

    class ProjectAdmin(AuditedAdminMixin, admin.ModelAdmin):
        pass

    model_admin = ProjectAdmin(Project, admin.site)
    project = operator.projects.get()
    request = rf.post("/admin/", REMOTE_ADDR="203.0.113.1")
    request.user = operator

    model_admin.log_change(request, project, [{"changed": {"fields": ["Name"]}}])
    model_admin.log_deletions(request, Project.objects.filter(pk=project.pk))

    events = list(AuditEvent.objects.filter(action="admin.action").order_by("id"))
    assert [e.details["operation"] for e in events] == ["change", "delete"]
    assert all(e.project_id == project.pk and e.ip_address == "203.0.113.1" for e in events)


# --- Portal ------------------------------------------------------------------


def _portal(project):
    return reverse("audit:project_events", kwargs={"slug": project.slug})


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_project_admins_see_their_projects_events_only(
    client, team, project_events, role, django_assert_max_num_queries
):
    client.force_login(getattr(team, role))
    client.get(_portal(team.project))  # the first visit remembers the project in the session (a write)
    with django_assert_max_num_queries(9):  # 8 + the navigation's project list
        response = client.get(_portal(team.project))
    assert response.status_code == 200
    shown = list(response.context["page"])
    assert {e.project_id for e in shown} == {team.project.pk}
    assert len(shown) == AuditEvent.objects.filter(project=team.project).count()
    assert b"vm.create.requested" in response.content and b"other" not in response.content


def test_portal_filters_by_action(client, team, project_events):
    client.force_login(team.owner)
    response = client.get(_portal(team.project) + "?action=vm.create.succeeded")
    assert [e.actor for e in response.context["page"]] == ["worker:hv-1"]


def test_portal_pages_do_not_grow_queries(client, team, django_assert_max_num_queries):
    for i in range(120):
        audit.record(actor=team.owner, action="vm.start.requested", project=team.project, details={"i": i})
    client.force_login(team.owner)
    client.get(_portal(team.project))  # the first visit remembers the project in the session (a write)
    with django_assert_max_num_queries(9):  # 8 + the navigation's project list
        response = client.get(_portal(team.project) + "?page=2")
    assert response.status_code == 200 and len(response.context["page"]) == 50


def test_portal_refuses_weaker_roles_and_strangers(client, team, other_project):
    client.force_login(team.member)
    assert client.get(_portal(team.project)).status_code == 403
    client.force_login(team.viewer)
    assert client.get(_portal(team.project)).status_code == 403
    assert client.get(_portal(other_project)).status_code == 404
    assert client.get("/projects/no-such-project/audit/").status_code == 404
    client.logout()
    assert client.get(_portal(team.project)).status_code == 302


# --- API ---------------------------------------------------------------------


def _api(project):
    return f"/api/v1/projects/{project.slug}/audit-events/"


def test_api_lists_a_projects_events_newest_first_with_cursor_pages(client, team, project_events):
    client.force_login(team.admin)
    response = client.get(_api(team.project) + "?page_size=2")
    body = response.json()
    assert response.status_code == 200
    expected = list(AuditEvent.objects.filter(project=team.project).order_by("-id").values_list("id", flat=True))
    assert [item["id"] for item in body["results"]] == expected[:2]
    rest = client.get(body["next"]).json()
    assert [item["id"] for item in rest["results"]] == expected[2:4]
    assert set(body["results"][0]) >= {"actor", "action", "target_type", "details", "ip_address", "request_id", "hash"}


def test_api_filters_by_action(client, team, project_events):
    client.force_login(team.owner)
    body = client.get(_api(team.project) + "?action=vm.create.succeeded").json()
    assert [item["actor"] for item in body["results"]] == ["worker:hv-1"]


def test_api_is_scoped_to_the_callers_projects(client, team, other_project, project_events):
    client.force_login(team.admin)
    response = client.get(_api(other_project))
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/projects/nope/audit-events/").status_code == 404
    client.force_login(team.member)
    assert client.get(_api(team.project)).status_code == 403
    client.logout()
    assert client.get(_api(team.project)).status_code == 401  # not authenticated (WWW-Authenticate: Bearer)


def test_api_is_read_only(client, team):
    client.force_login(team.owner)
    assert client.post(_api(team.project), {}).status_code == 405


def test_deleting_a_user_leaves_the_log_alone(team, project_events):
    # The log has no foreign key constraints and DO_NOTHING: the trigger is never asked to change a row.
    member = team.member
    audit.record(actor=member, action="auth.login.succeeded")
    User.objects.filter(pk=member.pk).delete()
    assert AuditEvent.objects.filter(actor=member.email).exists()
