"""Staff powers through the API need a second factor: staff-scoped tokens made with a
current code and a bounded life; any other token (or an unverified session) of a staff
user acts as an ordinary user. Turning a project's 2FA requirement off needs a code too."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services
from accounts.models import AccessToken, BackupCodeDevice, TOTPDevice
from compute import services as compute_services
from compute.models import VMRequest
from tests.fixtures.accounts import enrol, login_verified
from tests.fixtures.factories import PlanFactory, UserFactory


@pytest.fixture
def operator(db):
    staff = UserFactory(is_staff=True, is_superuser=True)
    staff.codes = enrol(staff)
    return staff


@pytest.fixture
def tenant_request(user, project, image, simulator):
    """Another tenant's VM request waiting for approval (user_data in it)."""
    return compute_services.vm_request_create(
        user=user,
        project=project,
        plan=PlanFactory(requires_approval=True),
        image=image,
        hypervisor=simulator,
        name="tenant-db",
    )


def _bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _staff_session(operator) -> APIClient:
    return login_verified(APIClient(), operator, operator.codes.device)


@pytest.mark.django_db
def test_an_ordinary_token_of_a_staff_user_acts_as_an_ordinary_user(operator, tenant_request):
    _, raw = services.token_create(user=operator, name="everyday")
    client = _bearer(raw)
    # Given a plain token of an operator: no other tenant's requests, no approving, no feed
    assert client.get("/api/v1/vm-requests/").json()["count"] == 0
    assert client.post(f"/api/v1/vm-requests/{tenant_request.pk}/approve/").status_code in (403, 404)
    assert client.get("/api/v1/security-events/").status_code == 403
    VMRequest.objects.get(pk=tenant_request.pk, status="pending")
    # ...and the operator's account is untouched by that (flags are withheld per request, never saved)
    operator.refresh_from_db()
    assert operator.is_staff and operator.is_superuser


@pytest.mark.django_db
def test_a_staff_token_needs_a_current_code_and_has_a_bounded_life(operator, tenant_request, settings):
    settings.STAFF_TOKEN_MAX_HOURS = 8
    session = _staff_session(operator)
    # Without a code in the request (the session's recent code is not enough): refused
    response = session.post("/api/v1/tokens/", {"name": "ops", "staff": True}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "otp_required"
    # Longer than the maximum: refused
    too_long = (timezone.now() + timedelta(hours=9)).isoformat()
    response = session.post(
        "/api/v1/tokens/",
        {"name": "ops", "staff": True, "expires_at": too_long},
        format="json",
        HTTP_X_OTP_TOKEN=operator.codes.next(),
    )
    assert response.status_code == 400 and "expires_at" in response.json()["error"]["fields"]
    # With a code: made, expiring at the maximum by default
    response = session.post(
        "/api/v1/tokens/", {"name": "ops", "staff": True}, format="json", HTTP_X_OTP_TOKEN=operator.codes.next()
    )
    assert response.status_code == 201, response.content
    token = AccessToken.objects.get(prefix=response.json()["prefix"])
    assert token.staff and timezone.now() + timedelta(hours=7, minutes=59) < token.expires_at
    assert token.expires_at <= timezone.now() + timedelta(hours=8)
    # The staff token carries staff powers: the feed, every tenant's requests, approving
    client = _bearer(response.json()["token"])
    assert client.get("/api/v1/security-events/").status_code == 200
    assert client.get("/api/v1/vm-requests/").json()["count"] == 1
    assert client.post(f"/api/v1/vm-requests/{tenant_request.pk}/approve/").status_code == 200


@pytest.mark.django_db
def test_only_operators_with_2fa_get_staff_tokens_and_losing_2fa_ends_their_power(operator, user):
    with pytest.raises(Exception, match="Only operators"):
        services.token_create(user=user, name="x", staff=True, code_verified_now=True)
    _, raw = services.token_create(user=operator, name="ops", staff=True, code_verified_now=True)
    assert _bearer(raw).get("/api/v1/security-events/").status_code == 200
    TOTPDevice.objects.filter(user=operator).delete()
    BackupCodeDevice.objects.filter(user=operator).delete()
    assert _bearer(raw).get("/api/v1/security-events/").status_code == 403


@pytest.mark.django_db
def test_an_unverified_staff_session_acts_as_an_ordinary_user(operator):
    client = APIClient()
    client.force_login(operator)  # password only: no code entered in this session
    assert client.get("/api/v1/security-events/").status_code == 403
    assert _staff_session(operator).get("/api/v1/security-events/").status_code == 200


@pytest.mark.django_db
def test_turning_the_2fa_requirement_off_needs_a_fresh_code(user_2fa, team_project):
    services.project_update(project=team_project, actor=user_2fa, require_2fa=True)
    _, raw = services.token_create(user=user_2fa, name="ci")
    client = _bearer(raw)
    url = f"/api/v1/projects/{team_project.slug}/"
    # A plain token PATCH: refused, nothing changed
    response = client.patch(url, {"require_2fa": False}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "otp_required"
    team_project.refresh_from_db()
    assert team_project.require_2fa
    # Renaming still works without a code; turning it on again needs none either
    assert client.patch(url, {"name": "Renamed"}, format="json").status_code == 200
    # With a current code: off
    response = client.patch(url, {"require_2fa": False}, format="json", HTTP_X_OTP_TOKEN=user_2fa.codes.next())
    assert response.status_code == 200
    team_project.refresh_from_db()
    assert not team_project.require_2fa


@pytest.mark.django_db
def test_the_portal_asks_for_a_code_before_turning_the_requirement_off(user_2fa, team_project):
    services.project_update(project=team_project, actor=user_2fa, require_2fa=True)
    client = login_verified(Client(), user_2fa, user_2fa.codes.device, recent=False)
    url = f"/projects/{team_project.slug}/settings/"
    response = client.post(url, {"name": team_project.name})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/2fa/verify/")
    team_project.refresh_from_db()
    assert team_project.require_2fa
    response = client.post(url, {"name": team_project.name, "otp_token": user_2fa.codes.next()})
    team_project.refresh_from_db()
    assert not team_project.require_2fa


@pytest.mark.django_db
def test_an_operator_makes_a_staff_token_in_the_portal_with_a_code(operator, user):
    client = login_verified(Client(), operator, operator.codes.device)
    page = client.get("/accounts/tokens/").content.decode()
    assert 'name="staff"' in page and 'name="otp_token"' in page  # offered though the session is fresh
    assert 'name="staff"' not in login_verified(Client(), user).get("/accounts/tokens/").content.decode()
    # Without a code: refused with the reason
    response = client.post("/accounts/tokens/new/", {"name": "ops", "staff": "on"}, follow=True)
    assert "current two-factor code" in response.content.decode() and not AccessToken.objects.exists()
    # With a code: a staff token, expiring within the maximum
    client.post("/accounts/tokens/new/", {"name": "ops", "staff": "on", "otp_token": operator.codes.next()})
    token = AccessToken.objects.get()
    assert token.staff and token.expires_at <= timezone.now() + timedelta(hours=8)
