"""CSRF on every portal form, Google sign-in switched by environment, session API CSRF."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.foundation.test_stack import PRODUCTION_ENV, _manage


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def test_no_portal_view_is_csrf_exempt():
    """DRF's views are exempt and enforce CSRF themselves for session users; nothing else may be."""
    exempt = [
        route
        for route, view in _walk(get_resolver().url_patterns)
        if getattr(view, "csrf_exempt", False) and not route.startswith("api/")
    ]
    assert exempt == []


def _csrf(client, url):
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get(url).content.decode()).group(1)


@pytest.mark.django_db
def test_portal_forms_refuse_a_post_without_the_csrf_token(user):
    client = Client(enforce_csrf_checks=True)
    assert client.post("/accounts/login/", {"login": user.email, "password": "x"}).status_code == 403
    client.force_login(user)
    assert client.post("/projects/new/", {"name": "Forged"}).status_code == 403
    token = _csrf(client, "/projects/")
    response = client.post("/projects/new/", {"name": "Real", "csrfmiddlewaretoken": token})
    assert response.status_code == 302


@pytest.mark.django_db
def test_the_session_api_needs_the_csrf_token_but_a_bearer_token_does_not(user, token_client):
    from accounts import services

    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/api/v1/projects/", {"name": "Forged"}, content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["error"]["message"]
    _, raw = services.token_create(user=user, name="ci")
    assert token_client(raw).post("/api/v1/projects/", {"name": "Scripted"}, format="json").status_code == 201


@pytest.mark.django_db
def test_google_sign_in_is_off_without_its_variables(client):
    page = client.get("/accounts/login/").content.decode()
    assert "google" not in page.lower()


@pytest.mark.django_db
def test_google_sign_in_is_on_with_its_variables():
    # A separate process (settings are read at start-up) on the test database, which it only reads
    db = connection.settings_dict
    script = (
        "from django.urls import reverse; from django.test import Client; "
        "print(reverse('google_login')); print('google' in Client().get('/accounts/login/').content.decode().lower())"
    )
    env = {
        "GOOGLE_CLIENT_ID": "id.apps.example",
        "GOOGLE_CLIENT_SECRET": "s3cret",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        # the page renders {% static %}: use the test settings' plain storage, not the manifest one
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }
    result = _manage(["shell", "-v", "0", "-c", script], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["/accounts/google/login/", "True"]


def test_check_deploy_stays_clean_with_google_on():
    env = {**PRODUCTION_ENV, "GOOGLE_CLIENT_ID": "id.apps.example", "GOOGLE_CLIENT_SECRET": "s3cret"}
    result = _manage(["check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode == 0, result.stdout + result.stderr
