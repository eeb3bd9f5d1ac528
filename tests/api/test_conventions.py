"""API conventions: schema, docs served locally, error bodies, Idempotency-Key, throttling."""

import pytest
from django.core.cache import cache
from django.core.management import call_command

from compute.models import VMRequest


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


def test_the_schema_validates_without_warnings(capsys):
    call_command("spectacular", "--validate", "--fail-on-warn")
    assert "openapi: 3" in capsys.readouterr().out


def test_the_docs_use_local_assets_only(api):
    page = api.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn." not in html and "unpkg" not in html


@pytest.mark.django_db
def test_unauthenticated_is_a_401_in_the_error_format(client):
    response = client.get("/api/v1/virtual-machines/")
    assert response.status_code in (401, 403)
    assert set(response.json()["error"]) == {"code", "message", "fields"}


def test_not_found_is_in_the_error_format(api):
    body = api.get("/api/v1/virtual-machines/999999/").json()
    assert body["error"]["code"] == "not_found"


def _request_body(project, plan, image, simulator, name="idem-1"):
    return {"project": project.slug, "plan": plan.pk, "image": image.pk, "hypervisor": simulator.pk, "name": name}


def test_same_idempotency_key_and_body_replays_the_first_response(api, project, plan, image, simulator):
    body = _request_body(project, plan, image, simulator)
    first = api.post("/api/v1/vm-requests/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = api.post("/api/v1/vm-requests/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    assert VMRequest.objects.count() == 1
    # without the header the same body is a new request (and here a name clash)
    assert api.post("/api/v1/vm-requests/", body, format="json").status_code == 409


def test_same_idempotency_key_with_another_body_is_422(api, project, plan, image, simulator):
    api.post(
        "/api/v1/vm-requests/",
        _request_body(project, plan, image, simulator),
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-2",
    )
    response = api.post(
        "/api/v1/vm-requests/",
        _request_body(project, plan, image, simulator, name="other"),
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-2",
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert VMRequest.objects.count() == 1


def test_idempotency_keys_are_per_user(api, staff_api, project, plan, image, simulator):
    api.post(
        "/api/v1/vm-requests/",
        _request_body(project, plan, image, simulator),
        format="json",
        HTTP_IDEMPOTENCY_KEY="shared",
    )
    other = staff_api.post(
        "/api/v1/vm-requests/",
        _request_body(project, plan, image, simulator),
        format="json",
        HTTP_IDEMPOTENCY_KEY="shared",
    )
    assert "Idempotent-Replayed" not in other  # the staff user is not a member: validated afresh
    assert other.status_code == 400


def test_a_replay_of_an_action_returns_the_same_operation(api, user, project, plan, image, simulator):
    from compute.models import VirtualMachine

    api.post("/api/v1/vm-requests/", _request_body(project, plan, image, simulator), format="json")
    vm = VirtualMachine.objects.get()
    VirtualMachine.objects.filter(pk=vm.pk).update(status="active", task_state=None, backend_id="sim-1")
    vm.operations.update(state="succeeded")
    first = api.post(f"/api/v1/virtual-machines/{vm.pk}/stop/", HTTP_IDEMPOTENCY_KEY="stop-1")
    again = api.post(f"/api/v1/virtual-machines/{vm.pk}/stop/", HTTP_IDEMPOTENCY_KEY="stop-1")
    assert first.status_code == again.status_code == 202
    assert first.json()["operation"]["id"] == again.json()["operation"]["id"]
    assert again["Location"] == first["Location"]


def test_throttling_per_user(api, monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    # DRF reads the rates into a class attribute at import time
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "60/min", "user": "3/min"})
    codes = [api.get("/api/v1/plans/").status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[-1] == 429
