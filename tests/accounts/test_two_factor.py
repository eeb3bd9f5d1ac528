"""TOTP enrolment, the code at login, backup codes, removal, fresh codes for destructive actions."""

import re

import pytest
from rest_framework.test import APIClient

from accounts import services
from accounts.choices import Role
from accounts.devices import backup_code_hash
from accounts.models import AccessToken, BackupCode, BackupCodeDevice, TOTPDevice
from audit.models import AuditEvent
from tests.fixtures.accounts import PASSWORD, add_member, enrol, login_verified, totp_code
from tests.fixtures.factories import UserFactory


def _password_login(client, user):
    response = client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return response


@pytest.mark.django_db
def test_enrolment_shows_a_local_qr_code_and_the_secret_and_needs_a_first_code(client, user):
    client.force_login(user)
    # Given the setup page: an inline SVG QR code (no external service) and the secret
    page = client.get("/accounts/2fa/setup/").content.decode()
    assert "<svg" in page and "<img" not in page
    secret = re.search(r"<code>([A-Z2-7]{32})</code>", page).group(1)
    assert client.get("/accounts/2fa/setup/").content.decode().count(secret) == 1  # same key until confirmed
    # When a wrong code is entered, nothing is turned on
    response = client.post("/accounts/2fa/setup/", {"otp_token": "000000" if totp_code(secret) != "000000" else "1"})
    assert response.status_code == 302 and not TOTPDevice.objects.filter(user=user).exists()
    # When the code computed from the secret is entered
    response = client.post("/accounts/2fa/setup/", {"otp_token": totp_code(secret)})
    assert response["Location"] == "/accounts/2fa/backup-codes/"
    # Then 2FA is on, and ten backup codes are shown exactly once
    assert TOTPDevice.objects.get(user=user).confirmed
    codes = re.findall(
        r"<li><code>([a-z2-7]{4}(?:-[a-z2-7]{4}){3})</code></li>",
        client.get("/accounts/2fa/backup-codes/").content.decode(),
    )
    # Only hashes are stored
    device = BackupCodeDevice.objects.get(user=user)
    stored = set(BackupCode.objects.values_list("code_hash", flat=True))
    assert len(codes) == 10 and stored == {backup_code_hash(device.pk, code) for code in codes}
    assert not any(code in str(stored) for code in codes)
    assert client.get("/accounts/2fa/backup-codes/")["Location"] == "/accounts/2fa/"
    assert AuditEvent.objects.filter(action="auth.2fa.enabled", actor_user=user).exists()
    # ...and the session that enrolled counts as verified
    assert client.get("/projects/").status_code == 200


@pytest.mark.django_db
def test_login_asks_for_the_code_and_the_api_refuses_a_half_logged_in_session(client, user_2fa):
    _password_login(client, user_2fa)
    # Password only: every page goes to the code page, the session API refuses
    response = client.get("/projects/")
    assert response.status_code == 302 and response["Location"] == "/accounts/2fa/verify/?next=%2Fprojects%2F"
    api = client.get("/api/v1/projects/")
    assert api.status_code == 403 and api.json()["error"]["code"] == "otp_required"
    # A wrong code is refused and audited
    response = client.post("/accounts/2fa/verify/?next=/projects/", {"otp_token": "12345", "next": "/projects/"})
    assert response.status_code == 200 and b"not right" in response.content
    failed = AuditEvent.objects.get(action="auth.login.failed")
    assert failed.details["reason"] == "otp"
    # The right code lets them in, back to where they were going
    response = client.post("/accounts/2fa/verify/", {"otp_token": user_2fa.codes.next(), "next": "/projects/"})
    assert response["Location"] == "/projects/"
    assert client.get("/projects/").status_code == 200
    assert client.get("/api/v1/projects/").status_code == 200


@pytest.mark.django_db
def test_a_backup_code_works_once(client, user_2fa):
    _password_login(client, user_2fa)
    assert client.post("/accounts/2fa/verify/", {"otp_token": "aaaa1111"})["Location"] == "/"
    client.post("/accounts/logout/")
    _password_login(client, user_2fa)
    response = client.post("/accounts/2fa/verify/", {"otp_token": "aaaa1111"})
    assert response.status_code == 200
    assert client.get("/projects/").status_code == 302
    device = BackupCodeDevice.objects.get(user=user_2fa)
    assert list(BackupCode.objects.values_list("code_hash", flat=True)) == [backup_code_hash(device.pk, "bbbb2222")]


@pytest.mark.django_db
def test_removal_needs_the_password_and_a_code(client, user_2fa):
    login_verified(client, user_2fa, user_2fa.codes.device)
    # Wrong password: still on
    response = client.post("/accounts/2fa/remove/", {"password": "nope-nope-nope", "otp_token": "aaaa1111"})
    assert response.status_code == 200 and TOTPDevice.objects.filter(user=user_2fa).exists()
    # Password and code: off, backup codes gone too
    response = client.post("/accounts/2fa/remove/", {"password": PASSWORD, "otp_token": user_2fa.codes.next()})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=user_2fa).exists()
    assert not BackupCodeDevice.objects.filter(user=user_2fa).exists()
    assert AuditEvent.objects.filter(action="auth.2fa.disabled", actor_user=user_2fa).exists()


@pytest.mark.django_db
def test_removal_is_refused_while_a_project_requires_2fa(client, user_2fa, team_project):
    services.project_update(project=team_project, actor=user_2fa, require_2fa=True)
    login_verified(client, user_2fa, user_2fa.codes.device)
    response = client.post("/accounts/2fa/remove/", {"password": PASSWORD, "otp_token": "aaaa1111"})
    assert response.status_code == 302
    assert TOTPDevice.objects.filter(user=user_2fa).exists()
    assert "requires two-factor" in str(list(response.wsgi_request._messages)[0])


@pytest.mark.django_db
def test_creating_a_token_asks_for_a_fresh_code(client, user_2fa):
    login_verified(client, user_2fa, user_2fa.codes.device, recent=False)
    # Given a session verified an hour ago: the form shows a code field
    page = client.get("/accounts/tokens/").content.decode()
    assert 'name="otp_token"' in page
    # Without a code: sent to the code page, back to the form afterwards, nothing created
    response = client.post("/accounts/tokens/new/", {"name": "ci"}, HTTP_REFERER="http://testserver/accounts/tokens/")
    assert response["Location"] == "/accounts/2fa/verify/?next=http%3A%2F%2Ftestserver%2Faccounts%2Ftokens%2F"
    assert not AccessToken.objects.exists()
    # A wrong code in the form: refused with a message
    response = client.post("/accounts/tokens/new/", {"name": "ci", "otp_token": "999999x"}, follow=True)
    assert b"code is not right; nothing was done" in response.content and not AccessToken.objects.exists()
    # With the code in the form: created, and the session is fresh again
    response = client.post("/accounts/tokens/new/", {"name": "ci", "otp_token": user_2fa.codes.next()})
    assert response["Location"] == "/accounts/tokens/"
    assert AccessToken.objects.filter(user=user_2fa, name="ci").exists()
    assert 'name="otp_token"' not in client.get("/accounts/tokens/").content.decode()


@pytest.mark.django_db
def test_api_destructive_actions_need_a_code_in_the_header(client, user_2fa):
    login_verified(client, user_2fa, user_2fa.codes.device, recent=False)
    response = client.post("/api/v1/tokens/", {"name": "ci"}, content_type="application/json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "otp_required"
    response = client.post(
        "/api/v1/tokens/", {"name": "ci"}, content_type="application/json", HTTP_X_OTP_TOKEN=user_2fa.codes.next()
    )
    assert response.status_code == 201, response.content


@pytest.mark.django_db
def test_an_owner_must_have_2fa_to_require_it(user, team_project):
    from controlplane.errors import Conflict

    with pytest.raises(Conflict):
        services.project_update(project=team_project, actor=user, require_2fa=True)


@pytest.mark.django_db
def test_a_project_requiring_2fa_sends_members_without_it_to_enrolment(client, user_2fa, team_project):
    # Given a project whose owner requires 2FA, and a member without it
    services.project_update(project=team_project, actor=user_2fa, require_2fa=True)
    member = UserFactory()
    add_member(team_project, member, Role.MEMBER)
    _, raw = services.token_create(user=member, name="old token")
    client.force_login(member)
    # Then portal pages send them to enrolment, and the API refuses session and token alike
    response = client.get("/projects/")
    assert response.status_code == 302 and response["Location"] == "/accounts/2fa/"
    assert client.get("/accounts/2fa/").status_code == 200
    assert client.get("/api/v1/projects/").json()["error"]["code"] == "two_factor_required"
    token_api = APIClient()
    token_api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert token_api.get("/api/v1/projects/").status_code == 403
    # When they enrol, they get in
    login_verified(client, member, enrol(member).device)
    assert client.get("/projects/").status_code == 200
    assert token_api.get("/api/v1/projects/").status_code == 200
