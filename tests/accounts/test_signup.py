"""Sign-up, mandatory email verification, login by email, password reset, email change."""

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail

from accounts.choices import ProjectKind, Role
from accounts.models import User
from audit.models import AuditEvent

PASSWORD = "a-long-and-unusual-passphrase-7"


def _link(message) -> str:
    match = re.search(r"https?://[^/\s]+(/\S+)", message.body)
    assert match, message.body
    return match.group(1)


def _signup(client, email="new@example.com"):
    return client.post("/accounts/signup/", {"email": email, "password1": PASSWORD, "password2": PASSWORD})


def _login(client, email="new@example.com", password=PASSWORD):
    return client.post("/accounts/login/", {"login": email, "password": password})


@pytest.mark.django_db
def test_sign_up_verify_by_mail_then_log_in(client):
    # Given a visitor who signs up
    response = _signup(client, "New.Person@Example.com")
    assert response.status_code == 302 and response["Location"] == "/accounts/confirm-email/"
    user = User.objects.get(email="new.person@example.com")
    # Then they get a personal project they own, and a verification mail
    membership = user.memberships.get()
    assert membership.role == Role.OWNER and membership.project.kind == ProjectKind.PERSONAL
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new.person@example.com"]
    # ...and they are not logged in before verifying
    assert client.get("/projects/").status_code == 302

    # When they open the link and confirm
    link = _link(mail.outbox[0])
    assert client.get(link).status_code == 200
    assert client.post(link).status_code == 302
    assert EmailAddress.objects.get(user=user).verified

    # Then they can log in with email and password
    response = _login(client, "new.person@example.com")
    assert response.status_code == 302
    assert client.get("/projects/").status_code == 200
    assert AuditEvent.objects.filter(action="auth.login.succeeded", actor_user=user).exists()


@pytest.mark.django_db
def test_an_unverified_user_cannot_log_in(client):
    _signup(client)
    client.logout()
    mail.outbox.clear()
    response = _login(client)
    # allauth sends them to "verify your email" (the link is re-sent after a cool-down); no session
    assert response.status_code == 302 and response["Location"] == "/accounts/confirm-email/"
    assert "_auth_user_id" not in client.session
    assert client.get("/projects/").status_code == 302


@pytest.mark.django_db
def test_logout_is_a_post_and_is_audited(client):
    _signup(client)
    client.post(_link(mail.outbox[0]))
    _login(client)
    user = User.objects.get(email="new@example.com")
    assert client.get("/", follow=True).status_code == 200
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="auth.logout", actor_user=user).exists()


@pytest.mark.django_db
def test_sign_up_with_a_taken_address_looks_the_same_as_a_new_one(client, user):
    """No enumeration: the page is the same; only the mailbox owner learns the account exists."""
    fresh = _signup(client, "someone-new@example.com")
    client.logout()
    taken = _signup(client, user.email)
    assert (fresh.status_code, fresh["Location"]) == (taken.status_code, taken["Location"])
    assert User.objects.filter(email=user.email).count() == 1
    assert [m.to for m in mail.outbox] == [["someone-new@example.com"], [user.email]]
    assert "already" in mail.outbox[1].body.lower()


@pytest.mark.django_db
def test_password_reset_does_not_reveal_whether_an_account_exists(client, user):
    known = client.post("/accounts/password/reset/", {"email": user.email})
    unknown = client.post("/accounts/password/reset/", {"email": "nobody@example.com"})
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert [m.to for m in mail.outbox] == [[user.email], ["nobody@example.com"]]


@pytest.mark.django_db
def test_password_reset_sets_a_new_password(client, user):
    client.post("/accounts/password/reset/", {"email": user.email})
    link = _link(mail.outbox[0])
    response = client.get(link)  # allauth moves the key into the session and redirects
    form_url = response["Location"] if response.status_code == 302 else link
    new = "another-long-passphrase-9"
    response = client.post(form_url, {"password1": new, "password2": new})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new)


@pytest.mark.django_db
def test_email_change_asks_for_the_password_and_takes_effect_once_verified(client, user):
    assert _login(client, user.email, "correct-horse-battery").status_code == 302
    # Given a logged-in user: changing the address first asks for the password again
    response = client.post("/accounts/email/", {"action_add": "", "email": "moved@example.com"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/reauthenticate/")
    # When they give it, the address is added (allauth resumes the stashed request)
    assert client.post(response["Location"], {"password": "correct-horse-battery"}).status_code == 302
    # Then nothing changes until the new address is verified
    user.refresh_from_db()
    assert user.email != "moved@example.com"
    assert mail.outbox[-1].to == ["moved@example.com"]
    client.post(_link(mail.outbox[-1]))
    user.refresh_from_db()
    assert user.email == "moved@example.com"
    assert list(EmailAddress.objects.filter(user=user).values_list("email", flat=True)) == ["moved@example.com"]


@pytest.mark.django_db
def test_sign_up_is_rate_limited_per_address(client, settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "signup": "2/m/ip"}
    assert _signup(client, "a@example.com").status_code == 302
    client.logout()
    assert _signup(client, "b@example.com").status_code == 302
    client.logout()
    response = _signup(client, "c@example.com")
    assert response.status_code == 429
    assert b"Too many requests" in response.content
    assert not User.objects.filter(email="c@example.com").exists()


@pytest.mark.django_db
def test_a_google_sign_up_gets_a_personal_project_and_its_invitations(rf, user):
    """The social adapter ends in the same service as the sign-up form (Google itself is not reachable here)."""
    from allauth.socialaccount.models import SocialAccount, SocialLogin
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.sessions.backends.db import SessionStore

    from accounts import services
    from accounts.adapter import SocialAccountAdapter

    team = services.project_create(name="Team", owner=user)
    services.invitation_create(project=team, actor=user, email="g@example.com", role=Role.VIEWER)
    request = rf.get("/accounts/google/login/callback/")
    request.session, request.user = SessionStore(), AnonymousUser()
    sociallogin = SocialLogin(
        user=User(email="g@example.com", full_name="Gee"),
        account=SocialAccount(provider="google", uid="1234567890"),
        email_addresses=[EmailAddress(email="g@example.com", verified=True, primary=True)],
    )
    created = SocialAccountAdapter().save_user(request, sociallogin)
    assert not created.has_usable_password()
    assert set(created.memberships.values_list("project__kind", "role")) == {
        (ProjectKind.PERSONAL, Role.OWNER),
        (ProjectKind.TEAM, Role.VIEWER),
    }
