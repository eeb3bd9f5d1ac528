"""The one project access rule (accounts.selectors.project_for_user) and who gets
into each project-scoped page and API endpoint: by role, strangers, operators.

Every project-scoped view resolves its project through that selector (portal:
accounts.views.common.with_project; API: controlplane.api.ProjectScopedMixin),
so this matrix is the table of who may read what."""

import pytest
from django.contrib.auth.models import AnonymousUser
from rest_framework.test import APIClient

from accounts import selectors, services
from accounts.choices import ROLE_ORDER, Role
from controlplane.errors import Forbidden, NotFound
from tests.fixtures.accounts import enrol
from tests.fixtures.factories import UserFactory

STAFF = "staff"  # an operator (is_staff) who is not a member of the project
STRANGER = "stranger"

# (url, least role that reads it, whether operators read it without being members)
PAGES = [
    ("/projects/{slug}/", Role.VIEWER, False),
    ("/projects/{slug}/dashboard/", Role.VIEWER, False),
    ("/projects/{slug}/vms/", Role.VIEWER, False),
    ("/projects/{slug}/requests/", Role.VIEWER, False),
    ("/projects/{slug}/requests/new/", Role.MEMBER, False),
    ("/projects/{slug}/audit/", Role.ADMIN, False),
    ("/projects/{slug}/webhooks/", Role.ADMIN, False),
    ("/billing/{slug}/", Role.VIEWER, True),
    ("/billing/{slug}/usage/", Role.VIEWER, True),
    ("/billing/{slug}/invoices/", Role.VIEWER, True),
    ("/billing/{slug}/profile/", Role.VIEWER, True),
]
API = [
    ("/api/v1/projects/{slug}/", Role.VIEWER, False),
    ("/api/v1/projects/{slug}/members/", Role.VIEWER, False),
    ("/api/v1/projects/{slug}/invitations/", Role.ADMIN, False),
    ("/api/v1/projects/{slug}/audit-events/", Role.ADMIN, False),
    ("/api/v1/projects/{slug}/wallet/", Role.VIEWER, True),
    ("/api/v1/projects/{slug}/ledger/", Role.VIEWER, True),
    ("/api/v1/projects/{slug}/usage/", Role.VIEWER, True),
    ("/api/v1/projects/{slug}/invoices/", Role.VIEWER, True),
    ("/api/v1/projects/{slug}/credit-notes/", Role.VIEWER, True),
    ("/api/v1/projects/{slug}/receipts/", Role.VIEWER, True),
    ("/api/v1/projects/{slug}/billing-profile/", Role.VIEWER, True),
    ("/api/v1/projects/{slug}/plan-prices/", Role.VIEWER, True),
]


def _people(world) -> dict:
    return {
        Role.OWNER: world.owner,
        Role.ADMIN: world.admin,
        Role.MEMBER: world.member,
        Role.VIEWER: world.viewer,
        STRANGER: world.stranger,
        STAFF: UserFactory(is_staff=True),
    }


def _expected(who, needed, staff_reads) -> int:
    if who == STRANGER:
        return 404
    if who == STAFF:
        return 200 if staff_reads else 404
    return 200 if ROLE_ORDER.index(who) <= ROLE_ORDER.index(needed) else 403


def _client(user, api: bool) -> APIClient:
    client = APIClient()
    if api:
        client.force_authenticate(user)
    else:
        client.force_login(user)
    return client


@pytest.mark.parametrize("url,needed,staff_reads,api", [(*row, False) for row in PAGES] + [(*row, True) for row in API])
def test_who_reads_each_project_page_and_endpoint(isolation_world, url, needed, staff_reads, api):
    path = url.format(slug=isolation_world.project.slug)
    answers = {who: _client(user, api).get(path).status_code for who, user in _people(isolation_world).items()}
    expected = {who: _expected(who, needed, staff_reads) for who in answers}
    assert answers == expected


@pytest.mark.parametrize("need", ROLE_ORDER)
@pytest.mark.parametrize("have", ROLE_ORDER)
def test_the_selector_lets_each_role_through_or_says_403(isolation_world, have, need, django_assert_num_queries):
    user = _people(isolation_world)[have]
    slug = isolation_world.project.slug
    if ROLE_ORDER.index(have) <= ROLE_ORDER.index(need):
        with django_assert_num_queries(1):
            project = selectors.project_for_user(user=user, slug=slug, role=need)
        assert (project, project.role) == (isolation_world.project, have)
    else:
        with pytest.raises(Forbidden, match=f"needs the {need} role"):
            selectors.project_for_user(user=user, slug=slug, role=need)


def test_strangers_unknown_slugs_and_anonymous_users_get_not_found(isolation_world):
    slug = isolation_world.project.slug
    cases = [(isolation_world.stranger, slug), (isolation_world.owner, "no-such-project"), (AnonymousUser(), slug)]
    for user, wanted in cases:
        with pytest.raises(NotFound):
            selectors.project_for_user(user=user, slug=wanted)


def test_operators_pass_only_where_the_view_asks_for_it(isolation_world):
    operator = UserFactory(is_staff=True)
    slug = isolation_world.project.slug
    with pytest.raises(NotFound):
        selectors.project_for_user(user=operator, slug=slug)
    project = selectors.project_for_user(user=operator, slug=slug, role=Role.OWNER, staff_override=True)
    assert (project, project.role) == (isolation_world.project, None)
    assert selectors.project_require_role(user=operator, project=project, role=Role.ADMIN, staff_override=True) is None


def test_a_project_requiring_2fa_refuses_members_without_it(isolation_world):
    world = isolation_world
    enrol(world.owner)
    services.project_update(project=world.project, actor=world.owner, require_2fa=True)
    with pytest.raises(Forbidden) as refused:
        selectors.project_for_user(user=world.viewer, slug=world.project.slug)
    assert refused.value.code == "two_factor_required"
    enrol(world.viewer)
    assert selectors.project_for_user(user=world.viewer, slug=world.project.slug).role == Role.VIEWER


def test_accounts_api_addresses_projects_by_slug(isolation_world):
    world = isolation_world
    api = _client(world.owner, True)
    assert api.get(f"/api/v1/projects/{world.project.pk}/").status_code == 404  # no numeric ids any more
    response = api.patch(f"/api/v1/projects/{world.project.slug}/", {"name": "Tenant A2"}, format="json")
    assert response.status_code == 200 and response.json()["slug"] == world.project.slug
    members = api.get(f"/api/v1/projects/{world.project.slug}/members/").json()
    everyone = {world.owner, world.admin, world.member, world.viewer}
    assert {m["email"] for m in members} == {person.email for person in everyone}
    invited = api.post(f"/api/v1/projects/{world.project.slug}/invitations/", {"email": "y@example.com"}, format="json")
    assert invited.status_code == 201


def test_a_viewers_form_is_refused_before_it_is_read(isolation_world):
    """Pages that need a role check it before reading the form: a viewer's
    invalid form is a 403, not a form error."""
    client = _client(isolation_world.viewer, False)
    slug = isolation_world.project.slug
    assert client.post(f"/projects/{slug}/settings/", {"name": ""}).status_code == 403
    assert client.post(f"/projects/{slug}/invitations/", {"email": "not-an-address"}).status_code == 403
    assert client.post(f"/projects/{slug}/vms/999/power/", {"action": "explode"}).status_code == 403
