"""Lockout after repeated failed logins (django-axes), rate limits (allauth), audit of failures."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.utils import timezone

from audit.models import AuditEvent
from tests.fixtures.accounts import PASSWORD


def _login(client, email, password, ip="198.51.100.7"):
    return client.post("/accounts/login/", {"login": email, "password": password}, REMOTE_ADDR=ip)


@pytest.mark.django_db
def test_lockout_after_n_failed_logins(client, user):
    limit = settings.AXES_FAILURE_LIMIT
    assert limit == 5
    # Given N-1 wrong passwords: still the normal form with an error
    for _ in range(limit - 1):
        response = _login(client, user.email, "wrong-password-123")
        assert response.status_code == 200 and b"not correct" in response.content
    # When the Nth fails, the account is locked for this address with a clear message
    response = _login(client, user.email, "wrong-password-123")
    assert response.status_code == 429
    assert b"too many failed logins" in response.content.lower()
    # Then even the right password is refused while locked
    response = _login(client, user.email, PASSWORD)
    assert response.status_code == 429 and "_auth_user_id" not in client.session
    # ...but the same account from another address is not locked out (no lockout-as-a-weapon)
    assert _login(client, user.email, PASSWORD, ip="203.0.113.9").status_code == 302
    # Every failure is in the audit log; the refused one says why
    reasons = list(
        AuditEvent.objects.filter(action="auth.login.failed").order_by("id").values_list("details__reason", flat=True)
    )
    assert reasons == ["credentials"] * limit + ["locked_out"]


@pytest.mark.django_db
def test_the_lock_lifts_after_the_cool_off(client, user):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, user.email, "wrong-password-123")
    assert _login(client, user.email, PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME * timedelta(hours=1))
    assert _login(client, user.email, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_the_admin_login_is_locked_out_too(client, user):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": user.email, "password": "wrong-password-123"})
    response = client.post("/admin/login/", {"username": user.email, "password": PASSWORD})
    assert response.status_code == 429


@pytest.mark.django_db
def test_failed_logins_from_many_addresses_hit_the_per_account_limit(client, user, settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login_failed": "20/m/ip,3/h/key"}
    for n in range(3):
        assert b"not correct" in _login(client, user.email, "wrong-password-123", ip=f"192.0.2.{n}").content
    response = _login(client, user.email, PASSWORD, ip="192.0.2.99")
    assert response.status_code == 200 and b"Too many failed login attempts" in response.content


@pytest.mark.django_db
def test_login_messages_do_not_reveal_whether_an_account_exists(client, user):
    known = _login(client, user.email, "wrong-password-123")
    unknown = _login(client, "nobody@example.com", "wrong-password-123")
    assert known.status_code == unknown.status_code == 200
    assert known.context["form"].errors == unknown.context["form"].errors


@pytest.mark.django_db
def test_password_reset_is_rate_limited_per_address(client, user, settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "reset_password": "20/m/ip,2/m/key"}
    for _ in range(2):
        assert client.post("/accounts/password/reset/", {"email": user.email}).status_code == 302
    response = client.post("/accounts/password/reset/", {"email": user.email})
    assert response.status_code == 429 and b"Too many requests" in response.content
    # Unknown addresses are limited the same way (no enumeration through the limit either)
    for _ in range(2):
        client.post("/accounts/password/reset/", {"email": "nobody@example.com"})
    assert client.post("/accounts/password/reset/", {"email": "nobody@example.com"}).status_code == 429
