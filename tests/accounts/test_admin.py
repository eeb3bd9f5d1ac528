"""Operators' admin: OTP required, every app's registrations on the OTP site, user (de)activation."""

import pytest
from allauth.account.models import EmailAddress
from axes.models import AccessAttempt
from django.contrib import admin
from django.test import Client
from django_otp.admin import OTPAdminSite
from rest_framework.test import APIClient

from accounts import services
from accounts.models import AccessToken, Project, User
from audit.models import AuditEvent
from tests.fixtures.accounts import PASSWORD, enrol, login_verified
from tests.fixtures.factories import UserFactory


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True, is_superuser=True)


def test_admin_site_is_the_otp_site_for_every_app():
    assert isinstance(admin.site, OTPAdminSite)
    # Registrations made by third-party apps with admin.site.register land on it too
    for model in (User, Project, AccessToken, AccessAttempt, EmailAddress):
        assert model in admin.site._registry, model


@pytest.mark.django_db
def test_admin_refuses_a_staff_user_without_otp(client, staff):
    # Logged in (password) but no device: the admin sends them to its login
    client.force_login(staff)
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    # The admin login form itself does not accept the password alone
    client.logout()
    response = client.post("/admin/login/?next=/admin/", {"username": staff.email, "password": PASSWORD})
    assert response.status_code == 200
    assert client.get("/admin/").status_code == 302


@pytest.mark.django_db
def test_admin_admits_a_staff_user_with_a_verified_device(client, staff):
    codes = enrol(staff)
    response = client.post(
        "/admin/login/?next=/admin/",
        {
            "username": staff.email,
            "password": PASSWORD,
            "otp_device": codes.device.persistent_id,
            "otp_token": codes.next(),
        },
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    # A portal session verified with the device works for the admin as well
    other = Client()
    login_verified(other, staff, codes.device)
    assert other.get("/admin/accounts/user/").status_code == 200


@pytest.mark.django_db
def test_admin_refuses_a_verified_user_who_is_not_staff(client, user_2fa):
    login_verified(client, user_2fa, user_2fa.codes.device)
    assert client.get("/admin/").status_code == 302


@pytest.mark.django_db
def test_deactivation_ends_sessions_and_tokens_at_once_and_reactivation_restores_login(client, staff, user):
    # Given a user with a live session and an API token
    victim_browser = Client()
    victim_browser.force_login(user)
    assert victim_browser.get("/projects/").status_code == 200
    _, raw = services.token_create(user=user, name="ci")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get("/api/v1/projects/").status_code == 200
    # When an operator deactivates them from the user list
    login_verified(client, staff, enrol(staff).device)
    response = client.post("/admin/accounts/user/", {"action": "deactivate", "_selected_action": [user.pk]})
    assert response.status_code == 302
    # Then the session and the token stop working at once
    assert victim_browser.get("/projects/").status_code == 302
    assert api.get("/api/v1/projects/").status_code == 401
    assert AccessToken.objects.get().revoked_at is not None
    event = AuditEvent.objects.get(action="user.deactivated")
    assert event.actor_user_id == staff.pk and event.details == {"tokens_revoked": 1}
    # When reactivated, they can log in again; the old session and token stay dead
    client.post("/admin/accounts/user/", {"action": "reactivate", "_selected_action": [user.pk]})
    user.refresh_from_db()
    assert user.is_active
    assert victim_browser.get("/projects/").status_code == 302
    assert api.get("/api/v1/projects/").status_code == 401
    fresh = Client()
    assert fresh.post("/accounts/login/", {"login": user.email, "password": PASSWORD}).status_code == 302
    assert fresh.get("/projects/").status_code == 200
    assert AuditEvent.objects.filter(action="user.reactivated").exists()


@pytest.mark.django_db
def test_user_list_shows_2fa_status_with_a_bounded_query_count(client, staff, django_assert_max_num_queries):
    login_verified(client, staff, enrol(staff).device)
    for _ in range(15):
        enrol(UserFactory())
    with django_assert_max_num_queries(15):
        response = client.get("/admin/accounts/user/")
    assert response.status_code == 200
    assert response.content.decode().count('alt="True"') >= 16


@pytest.mark.django_db
def test_adding_a_user_in_admin_gives_them_a_personal_project(client, staff):
    login_verified(client, staff, enrol(staff).device)
    response = client.post(
        "/admin/accounts/user/add/",
        {
            "email": "added@example.com",
            "full_name": "Added",
            "usable_password": "true",
            "password1": "a-long-and-unusual-passphrase-7",
            "password2": "a-long-and-unusual-passphrase-7",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert User.objects.get(email="added@example.com").projects.get().kind == "personal"


@pytest.mark.django_db
def test_project_admin_lists_members_inline(client, staff, user, team_project):
    login_verified(client, staff, enrol(staff).device)
    response = client.get(f"/admin/accounts/project/{team_project.pk}/change/")
    assert response.status_code == 200 and user.email in response.content.decode()
