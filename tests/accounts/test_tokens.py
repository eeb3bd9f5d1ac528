"""Personal access tokens: stored hashed, Bearer authentication, revocation, expiry, read-only scope."""

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import services
from accounts.models import AccessToken
from audit.models import AuditEvent
from tests.fixtures.accounts import login_verified


@pytest.mark.django_db
def test_a_token_is_shown_once_and_stored_only_as_a_hash(user):
    token, raw = services.token_create(user=user, name="ci")
    # cpat_<8 hex>_<43 url-safe characters>
    prefix, secret = raw.removeprefix("cpat_").split("_", 1)
    assert prefix == token.prefix and len(prefix) == 8 and len(secret) == 43
    row = AccessToken.objects.values().get(pk=token.pk)
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert all(secret not in str(value) for value in row.values())
    event = AuditEvent.objects.get(action="auth.token.created")
    assert secret not in str(event.details) and event.details["prefix"] == prefix


@pytest.mark.django_db
def test_bearer_token_authenticates_and_notes_its_use(user, token_client):
    token, raw = services.token_create(user=user, name="ci")
    response = token_client(raw).get("/api/v1/projects/")
    assert response.status_code == 200
    assert [p["slug"] for p in response.json()["results"]] == [user.projects.get().slug]
    token.refresh_from_db()
    assert token.last_used_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "mangle",
    [
        lambda raw: raw[:-1] + ("A" if raw[-1] != "A" else "B"),  # wrong secret, right prefix
        lambda raw: "cpat_00000000_" + raw.split("_", 2)[2],  # unknown prefix
        lambda raw: raw.removeprefix("cpat_"),  # not our format
    ],
)
def test_a_wrong_token_is_a_401(user, token_client, mangle):
    _, raw = services.token_create(user=user, name="ci")
    response = token_client(mangle(raw)).get("/api/v1/projects/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["message"] == "Invalid token."


@pytest.mark.django_db
def test_a_revoked_token_is_rejected(user, token_client):
    token, raw = services.token_create(user=user, name="ci")
    services.token_revoke(token=token, actor=user)
    response = token_client(raw).get("/api/v1/projects/")
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]
    assert AuditEvent.objects.filter(action="auth.token.revoked").count() == 1
    services.token_revoke(token=token, actor=user)  # twice is harmless and not audited again
    assert AuditEvent.objects.filter(action="auth.token.revoked").count() == 1


@pytest.mark.django_db
def test_an_expired_token_is_rejected(user, token_client):
    token, raw = services.token_create(user=user, name="ci", expires_at=timezone.now() + timedelta(days=1))
    assert token_client(raw).get("/api/v1/projects/").status_code == 200
    # a day later
    AccessToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = token_client(raw).get("/api/v1/projects/")
    assert response.status_code == 401 and "expired" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_a_read_only_token_can_read_but_not_act(user, token_client):
    _, raw = services.token_create(user=user, name="dashboard", read_only=True)
    client = token_client(raw)
    assert client.get("/api/v1/projects/").status_code == 200
    response = client.post("/api/v1/projects/", {"name": "New"}, format="json")
    assert response.status_code == 403 and response.json()["error"]["message"] == "This API token is read-only."
    assert client.delete(f"/api/v1/tokens/{AccessToken.objects.get().pk}/").status_code == 403
    assert user.projects.count() == 1


@pytest.mark.django_db
def test_a_read_write_token_can_act_but_not_create_tokens(user, token_client):
    _, raw = services.token_create(user=user, name="automation")
    client = token_client(raw)
    assert client.post("/api/v1/projects/", {"name": "New"}, format="json").status_code == 201
    response = client.post("/api/v1/tokens/", {"name": "another"}, format="json")
    assert response.status_code == 403
    assert AccessToken.objects.count() == 1


@pytest.mark.django_db
def test_portal_token_page_creates_shows_once_and_revokes(client, user):
    client.force_login(user)
    response = client.post("/accounts/tokens/new/", {"name": "laptop", "lifetime": "30", "read_only": "on"})
    assert response["Location"] == "/accounts/tokens/"
    token = AccessToken.objects.get()
    assert token.read_only and (token.expires_at - timezone.now()).days == 29
    first = client.get("/accounts/tokens/").content.decode()
    assert 'id="new-token">cpat_' in first
    assert 'id="new-token"' not in client.get("/accounts/tokens/").content.decode()
    client.post(f"/accounts/tokens/{token.pk}/revoke/")
    token.refresh_from_db()
    assert token.revoked_at is not None


@pytest.mark.django_db
def test_token_creation_is_rate_limited(client, user, settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "create_token": "2/h/user"}
    client.force_login(user)
    for name in ("a", "b", "c"):
        client.post("/accounts/tokens/new/", {"name": name})
    assert sorted(AccessToken.objects.values_list("name", flat=True)) == ["a", "b"]
    api = client.post("/api/v1/tokens/", {"name": "d"}, content_type="application/json")
    assert api.status_code == 429


@pytest.mark.django_db
def test_api_lists_and_revokes_own_tokens_only(client, user, user_2fa_other):
    mine, _ = services.token_create(user=user, name="mine")
    theirs, _ = services.token_create(user=user_2fa_other, name="theirs")
    client.force_login(user)
    assert [t["name"] for t in client.get("/api/v1/tokens/").json()["results"]] == ["mine"]
    assert client.delete(f"/api/v1/tokens/{theirs.pk}/").status_code == 404
    assert client.delete(f"/api/v1/tokens/{mine.pk}/").status_code == 204
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


@pytest.fixture
def user_2fa_other(db):
    from tests.fixtures.factories import UserFactory

    return UserFactory()


@pytest.mark.django_db
def test_token_create_via_api_returns_the_token_once(client, user):
    login_verified(client, user)
    response = client.post("/api/v1/tokens/", {"name": "ci", "read_only": True}, content_type="application/json")
    assert response.status_code == 201
    body = response.json()
    assert body["token"].startswith("cpat_") and body["read_only"] is True
    assert "token" not in client.get(f"/api/v1/tokens/{body['id']}/").json()
