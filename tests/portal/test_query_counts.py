"""Every portal page answers in a bounded number of queries with 120 VMs, 30
requests, a month of usage and an invoice (no query per row)."""

import pytest

from tests.fixtures.accounts import login_verified

# Pages with the most queries each may take: the session, the user, the 2FA
# middleware's check and the navigation's project list (4) plus the page's own reads.
PROJECT_PAGES = [
    ("/projects/{slug}/dashboard/", 13),
    ("/projects/{slug}/vms/", 10),
    ("/projects/{slug}/vms/?status=active", 10),
    ("/projects/{slug}/vms/?page=2", 10),
    ("/projects/{slug}/vms/{building}/", 13),  # + the backups tab: its backups, its schedule
    (
        "/projects/{slug}/vms/{error}/",
        15,
    ),  # + the snapshots tab, + its IP addresses, + backups and schedule (one query each, any number of rows)
    ("/projects/{slug}/requests/", 10),
    ("/projects/{slug}/requests/new/", 15),
    ("/billing/{slug}/", 20),  # + payment settings, burn rate (VMs, prices), payments, refunds, trial, transfer
    ("/billing/{slug}/usage/", 10),
    ("/billing/{slug}/invoices/", 10),
    ("/billing/{slug}/profile/", 9),
    ("/projects/{slug}/", 9),
    ("/projects/{slug}/audit/", 10),
    ("/accounts/2fa/", 6),
    ("/accounts/tokens/", 9),
    ("/accounts/sessions/", 8),
    ("/projects/", 7),
]


@pytest.fixture
def busy_client(client, portal_world):
    return login_verified(client, portal_world.user)


@pytest.mark.parametrize(("path", "budget"), PROJECT_PAGES)
def test_page_query_count_is_bounded(busy_client, portal_world, path, budget, django_assert_max_num_queries):
    url = path.format(
        slug=portal_world.project.slug,
        building=portal_world.vm("building").pk,
        error=portal_world.vm("error").pk,
    )
    busy_client.get(url)  # warm the session (the activity note is written at most every few minutes)
    with django_assert_max_num_queries(budget):
        response = busy_client.get(url)
    assert response.status_code == 200, (url, response.status_code)


@pytest.mark.parametrize(
    "path", ["/projects/{slug}/vms/", "/projects/{slug}/vms/{building}/", "/projects/{slug}/dashboard/"]
)
def test_live_fragments_are_bounded_too(busy_client, portal_world, path, django_assert_max_num_queries):
    url = path.format(slug=portal_world.project.slug, building=portal_world.vm("building").pk)
    busy_client.get(url)
    with django_assert_max_num_queries(12):  # the VM page's backups tab: its backups and schedule
        response = busy_client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert b"<html" not in response.content  # a fragment, not the page


def test_the_lists_show_every_row_of_a_page(busy_client, portal_world):
    body = busy_client.get(f"/projects/{portal_world.project.slug}/vms/").content.decode()
    assert body.count('href="/projects/') >= 50 and "Page 1 of 3" in body
    requests = busy_client.get(f"/projects/{portal_world.project.slug}/requests/").content.decode()
    assert requests.count("<td>req-0") == 30
