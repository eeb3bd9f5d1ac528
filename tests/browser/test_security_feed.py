"""The operators' security feed in a real browser: it renders under the
Content-Security-Policy and picks up a new event by itself (htmx polling)."""

import pytest
from playwright.sync_api import expect

import audit
from tests.browser.test_pages import browser_as
from tests.fixtures.accounts import enrol
from tests.fixtures.factories import UserFactory

pytestmark = pytest.mark.browser


@pytest.mark.django_db(transaction=True)
def test_the_security_feed_updates_itself_without_csp_violations(new_page, client, live_server):
    operator = UserFactory(is_staff=True, is_superuser=True)
    page = browser_as(new_page, client, live_server, operator, enrol(operator).device)
    page.goto("/admin/security/")
    table = page.locator("#security-events")
    expect(table).not_to_contain_text("Security alert")
    # When the detector raises an alert while the page is open, the next poll shows it
    audit.record(actor="system:brute-force-detector", action="security.alert", details={"rule": "address"})
    expect(table).to_contain_text("Security alert", timeout=15_000)
    expect(table.locator(".severity-critical").first).to_be_visible()
    assert page.errors == []
