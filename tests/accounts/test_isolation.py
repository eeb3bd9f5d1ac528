"""Isolation matrix for the accounts pages and API: someone outside a project
gets 404 for everything of it (its existence is not revealed); a viewer inside
it can look but not change anything (403). Other apps add their own matrices
with the ``isolation_world`` fixture (tests/fixtures/accounts.py)."""

import pytest
from rest_framework.test import APIClient

# (method, url built from the world, body). Portal forms post form data; the API gets JSON.
PORTAL_READS = [
    ("get", lambda w: f"/projects/{w.project.slug}/", None),
]
PORTAL_WRITES = [
    ("post", lambda w: f"/projects/{w.project.slug}/settings/", {"name": "Taken over", "require_2fa": "on"}),
    ("post", lambda w: f"/projects/{w.project.slug}/delete/", {}),
    ("post", lambda w: f"/projects/{w.project.slug}/members/{w.member_ms.pk}/role/", {"role": "owner"}),
    ("post", lambda w: f"/projects/{w.project.slug}/members/{w.member_ms.pk}/remove/", {}),
    ("post", lambda w: f"/projects/{w.project.slug}/invitations/", {"email": "evil@example.com", "role": "owner"}),
    ("post", lambda w: f"/projects/{w.project.slug}/invitations/{w.invitation.pk}/revoke/", {}),
]
API_READS = [
    ("get", lambda w: f"/api/v1/projects/{w.project.slug}/", None),
    ("get", lambda w: f"/api/v1/projects/{w.project.slug}/members/", None),
    ("get", lambda w: f"/api/v1/projects/{w.project.slug}/members/{w.member_ms.pk}/", None),
]
API_WRITES = [
    ("patch", lambda w: f"/api/v1/projects/{w.project.slug}/", {"name": "Taken over"}),
    ("delete", lambda w: f"/api/v1/projects/{w.project.slug}/", None),
    ("patch", lambda w: f"/api/v1/projects/{w.project.slug}/members/{w.member_ms.pk}/", {"role": "owner"}),
    ("delete", lambda w: f"/api/v1/projects/{w.project.slug}/members/{w.member_ms.pk}/", None),
    ("get", lambda w: f"/api/v1/projects/{w.project.slug}/invitations/", None),  # admins only
    ("post", lambda w: f"/api/v1/projects/{w.project.slug}/invitations/", {"email": "evil@example.com"}),
    ("delete", lambda w: f"/api/v1/projects/{w.project.slug}/invitations/{w.invitation.pk}/", None),
]
# Another user's token: nobody but its owner sees it (404 for everyone, viewer or not).
TOKEN_CASES = [
    ("post", lambda w: f"/accounts/tokens/{w.token.pk}/revoke/", {}, "portal"),
    ("get", lambda w: f"/api/v1/tokens/{w.token.pk}/", None, "api"),
    ("delete", lambda w: f"/api/v1/tokens/{w.token.pk}/", None, "api"),
]


def _call(client, method, url, body, api):
    if api:
        return getattr(client, method)(url, body, format="json")
    return getattr(client, method)(url, body or {})


def _client(user, api):
    client = APIClient()
    if api:
        client.force_authenticate(user)
    else:
        client.force_login(user)
    return client


CASES = [(*case, False) for case in PORTAL_READS + PORTAL_WRITES] + [(*case, True) for case in API_READS + API_WRITES]


@pytest.mark.parametrize("method,url,body,api", CASES)
def test_outsiders_get_404_for_everything_of_another_project(isolation_world, method, url, body, api):
    world = isolation_world
    before = world.snapshot()
    response = _call(_client(world.stranger, api), method, url(world), body, api)
    assert response.status_code == 404, (url(world), response.status_code)
    assert world.snapshot() == before


@pytest.mark.parametrize("method,url,body,api", [(*c, False) for c in PORTAL_WRITES] + [(*c, True) for c in API_WRITES])
def test_a_viewer_cannot_change_anything(isolation_world, method, url, body, api):
    world = isolation_world
    before = world.snapshot()
    response = _call(_client(world.viewer, api), method, url(world), body, api)
    assert response.status_code == 403, (url(world), response.status_code)
    assert world.snapshot() == before


@pytest.mark.parametrize("method,url,body,api", [(*c, False) for c in PORTAL_READS] + [(*c, True) for c in API_READS])
def test_a_viewer_can_look(isolation_world, method, url, body, api):
    response = _call(_client(isolation_world.viewer, api), method, url(isolation_world), body, api)
    assert response.status_code == 200


@pytest.mark.parametrize("method,url,body,kind", TOKEN_CASES)
def test_nobody_else_reaches_a_users_token(isolation_world, method, url, body, kind):
    world = isolation_world
    before = world.snapshot()
    for other in (world.stranger, world.viewer, world.admin):
        response = _call(_client(other, kind == "api"), method, url(world), body, kind == "api")
        assert response.status_code == 404
    assert world.snapshot() == before


@pytest.mark.django_db
def test_project_lists_show_only_ones_own_projects(isolation_world):
    world = isolation_world
    api = _client(world.stranger, True)
    names = [p["name"] for p in api.get("/api/v1/projects/").json()["results"]]
    assert "Tenant A" not in names and "Tenant B" in names
    portal = _client(world.stranger, False)
    assert b"Tenant A" not in portal.get("/projects/").content
