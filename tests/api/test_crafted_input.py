"""Crafted input gets a 4xx with a clear message, never a 500; another tenant's
objects answer exactly like objects that do not exist; nothing under /api/ answers HTML."""

import base64
import json

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services as accounts_services
from accounts.choices import Role
from billing.periods import month_of
from compute import services
from compute.models import VirtualMachine, VMRequest
from tests.fixtures.factories import UserFactory, make_billable


def _client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def _error(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    return response.json()["error"]


def _request_body(project_row, plan_row, image, simulator, **overrides) -> dict:
    body = {"project": project_row.slug, "plan": plan_row.pk, "image": image.pk, "hypervisor": simulator.pk}
    return {**body, "name": "c-1", **overrides}


# -- ids that are not ids --------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.ADMIN, Role.VIEWER])
def test_withdrawing_an_invitation_by_a_non_numeric_id_is_a_4xx(isolation_world, role):
    world = isolation_world
    caller = world.admin if role == Role.ADMIN else world.viewer
    response = _client(caller).delete(f"/api/v1/projects/{world.project.slug}/invitations/abc/")
    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"
    assert world.invitation.__class__.objects.get(pk=world.invitation.pk).revoked_at is None


@pytest.mark.parametrize(
    "raw, message",
    [
        ("1e309", "The number 1e309 is out of range."),
        ("-1e309", "The number -1e309 is out of range."),
        ("Infinity", "Infinity is not valid JSON."),
        ("NaN", "NaN is not valid JSON."),
        ("1.5", "Must be a whole number: the id of the object."),
        ("true", "Must be a whole number: the id of the object."),
        ('"1"', "Must be a whole number: the id of the object."),
        ("[1]", "Must be a whole number: the id of the object."),
    ],
)
def test_a_plan_that_is_not_a_whole_number_is_refused_not_truncated(api, project, plan, image, simulator, raw, message):
    """1.5 used to become plan 1 and 1e309 a 500."""
    body = json.dumps(_request_body(project, plan, image, simulator, plan="PLAN")).replace('"PLAN"', raw)
    response = api.post("/api/v1/vm-requests/", body, content_type="application/json")
    assert response.status_code == 400
    assert message in _error(response)["message"]
    assert not VMRequest.objects.exists()


@pytest.mark.parametrize(
    "url, body, field, message",
    [
        ("/api/v1/projects/", {"name": 0}, "name", "Must be a string."),
        ("/api/v1/tokens/", {"name": "ci", "read_only": 1}, "read_only", "Must be true or false."),
        ("/api/v1/tokens/", {"name": ["ci"]}, "name", "Must be a string."),
    ],
)
def test_json_values_of_the_wrong_type_are_refused_not_cast(api, url, body, field, message):
    response = api.post(url, body, format="json")
    assert response.status_code == 400
    assert _error(response)["fields"] == {field: [message]}


@pytest.mark.parametrize("query", ["status=", "status=nonsense"])
def test_a_filter_without_a_valid_value_is_a_400(api, query):
    response = api.get(f"/api/v1/vm-requests/?{query}")
    assert response.status_code == 400
    assert list(_error(response)["fields"]) == ["status"]


# -- bodies -----------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_a_json_body_nested_thousands_of_levels_deep_is_a_400(api, depth):
    body = "[" * depth + "]" * depth
    response = api.post("/api/v1/projects/", body, content_type="application/json")
    assert response.status_code == 400
    assert "nested" in _error(response)["message"]


def test_a_json_body_just_past_the_depth_limit_is_a_400_and_within_it_is_parsed(api):
    too_deep = {"name": "Deep", "x": json.loads("[" * 40 + "]" * 40)}
    assert api.post("/api/v1/projects/", too_deep, format="json").status_code == 400
    assert api.post("/api/v1/projects/", {"name": "Shallow", "x": [[[1]]]}, format="json").status_code == 201


def test_a_body_that_is_not_json_is_a_415_in_the_error_format(api):
    response = api.post("/api/v1/projects/", "name=Form", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert _error(response)["code"] == "unsupported_media_type"


@pytest.mark.parametrize("idempotency_key", [None, "big-1"])
def test_an_oversized_body_is_a_413_in_json(api, settings, idempotency_key):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    headers = {"HTTP_IDEMPOTENCY_KEY": idempotency_key} if idempotency_key else {}
    body = json.dumps({"name": "x" * 2_000})
    response = api.post("/api/v1/projects/", body, content_type="application/json", **headers)
    assert response.status_code == 413
    assert _error(response)["code"] == "request_too_large"


# -- foreign objects look exactly like missing ones ---------------------------------------------


def test_a_vm_request_for_another_tenants_project_answers_like_a_missing_project(api, project, plan, image, simulator):
    stranger = UserFactory()
    foreign = accounts_services.project_create(name="Their Project", owner=stranger)
    answers = []
    for slug in (foreign.slug, "no-such-project"):
        response = api.post("/api/v1/vm-requests/", _request_body(project, plan, image, simulator, project=slug))
        answers.append((response.status_code, _error(response)))
    assert answers[0] == answers[1]
    assert answers[0][0] == 400
    assert answers[0][1]["fields"] == {"project": ["No such project."]}


def test_audit_events_of_another_tenant_answer_like_a_missing_project(isolation_world):
    world = isolation_world
    foreign = world.stranger.projects.get(name="Tenant B")
    client = _client(world.owner)
    foreign_answer = client.get(f"/api/v1/projects/{foreign.slug}/audit-events/")
    missing_answer = client.get("/api/v1/projects/no-such-project/audit-events/")
    assert foreign_answer.status_code == missing_answer.status_code == 404
    assert foreign_answer.json() == missing_answer.json()


def test_operations_filtered_by_another_tenants_vm_answer_like_a_missing_vm(api, user, project, plan, image, simulator):
    stranger = UserFactory()
    theirs = accounts_services.project_create(name="Their Project", owner=stranger)
    make_billable(theirs)
    services.vm_request_create(user=stranger, project=theirs, plan=plan, image=image, hypervisor=simulator, name="x")
    foreign_vm = VirtualMachine.objects.get(project=theirs)
    foreign_answer = api.get(f"/api/v1/operations/?vm={foreign_vm.pk}")
    missing_answer = api.get(f"/api/v1/operations/?vm={foreign_vm.pk + 1000}")
    assert foreign_answer.status_code == missing_answer.status_code == 200
    assert foreign_answer.json() == missing_answer.json() == {"count": 0, "next": None, "previous": None, "results": []}
    assert api.get("/api/v1/operations/?vm=abc").status_code == 400


# -- JSON, not HTML ------------------------------------------------------------------------------


def test_the_api_answers_json_to_a_browser_asking_for_html(api):
    response = api.get("/api/v1/plans/", HTTP_ACCEPT="text/html")
    assert response["Content-Type"].startswith("application/json")
    assert b"<html" not in response.content.lower()


def test_the_browsable_api_is_off_unless_debugging_outside_production():
    from controlplane import settings as real_settings

    renderers = real_settings.REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"]
    assert renderers == ["controlplane.api_output.JSONRenderer"] or (
        real_settings.DEBUG and not real_settings.PRODUCTION
    )


def test_a_bad_request_under_api_is_json(client, settings):
    """Django's own 400 (here a Host header that is not allowed) is JSON under /api/."""
    settings.ALLOWED_HOSTS = ["good.example"]
    response = client.get("/api/v1/plans/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert _error(response)["code"] == "bad_request"


# -- values at the edges (found by hand while schemathesis was made strict) -------------------


@pytest.mark.parametrize(
    "position",
    [b"p=2026-01-01", b"p=%00", "p=١٢".encode(), b"r=1&p=x"],
)
def test_a_crafted_audit_cursor_is_a_404_not_a_500(api, project, position):
    """The cursor is opaque base64 of ``p=<last id>``; text there reached the query (a 500)."""
    cursor = base64.b64encode(position).decode()
    response = api.get(f"/api/v1/projects/{project.slug}/audit-events/", {"cursor": cursor})
    assert response.status_code == 404
    assert _error(response)["message"] == "Invalid cursor"
    huge = base64.b64encode(b"p=" + b"9" * 30).decode()
    assert api.get(f"/api/v1/projects/{project.slug}/audit-events/", {"cursor": huge}).status_code == 200


@pytest.mark.parametrize("month", ["9999-12", "0001-01"])
def test_a_month_at_the_calendars_edge_is_this_month_not_a_500(api, project, month):
    """Like any month that cannot be read: the default (this month), in the API and the portal."""
    response = api.get(f"/api/v1/projects/{project.slug}/usage/", {"month": month})
    assert response.status_code == 200
    assert response.json()["month"] == f"{month_of(timezone.now()):%Y-%m}"
    assert api.get(f"/billing/{project.slug}/usage/", {"month": month}).status_code == 200
    assert api.get(f"/api/v1/projects/{project.slug}/usage/", {"month": "9998-12"}).json()["month"] == "9998-12"
