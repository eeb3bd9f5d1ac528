"""Every main page in a real browser, at desktop and phone widths and in both
themes: no script error, no failed request, nothing wider than a phone's
screen, a skip link and labelled controls. With ``SAVE_SCREENSHOTS=1`` the
pictures go to docs/screenshots/ (the README shows them); otherwise to a
temporary directory."""

import os
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from compute.models import Image, ImageReference
from tests.fixtures.accounts import enrol, login_verified
from tests.fixtures.browser import DESKTOP, PHONE, popovers_off_screen
from tests.fixtures.factories import ImageFactory, PlanFactory, UserFactory
from tests.fixtures.notifications import build_notifications_showcase
from tests.fixtures.portal import build_showcase

pytestmark = pytest.mark.browser

# name, path (formatted with the showcase's slug and VM ids)
PAGES = [
    ("dashboard", "/projects/{slug}/dashboard/"),
    ("vms", "/projects/{slug}/vms/"),
    ("vm", "/projects/{slug}/vms/{active}/"),
    ("vm-stopped", "/projects/{slug}/vms/{stopped}/"),
    ("vm-building", "/projects/{slug}/vms/{building}/"),
    ("vm-failed", "/projects/{slug}/vms/{failed}/"),
    ("vm-metrics", "/projects/{slug}/vms/{active}/metrics/"),
    ("request-new", "/projects/{slug}/requests/new/"),
    ("requests", "/projects/{slug}/requests/"),
    ("billing-usage", "/billing/{slug}/usage/"),
    ("billing-wallet", "/billing/{slug}/"),
    ("billing-invoices", "/billing/{slug}/invoices/"),
    ("members", "/projects/{slug}/"),
    ("security", "/accounts/2fa/"),
    ("tokens", "/accounts/tokens/"),
    ("sessions", "/accounts/sessions/"),
    ("profile", "/accounts/profile/"),
    ("projects", "/projects/"),
    ("audit", "/projects/{slug}/audit/"),
    ("ssh-keys", "/accounts/ssh-keys/"),
    ("notifications", "/notifications/"),
    ("notification-preferences", "/notifications/preferences/"),
    ("webhooks", "/projects/{slug}/webhooks/"),
    ("webhook", "/projects/{slug}/webhooks/{webhook}/"),
]
# Saved to docs/screenshots/ (desktop and phone); the others are checked, not kept.
KEPT = {
    "dashboard",
    "vms",
    "vm",
    "vm-building",
    "vm-failed",
    "request-new",
    "billing-usage",
    "billing-wallet",
    "notifications",
    "audit",
}


@pytest.fixture
def showcase(transactional_db, simulator, supplier):
    simulator.region = "Mumbai (simulated)"
    simulator.save()
    user = UserFactory(email="demo@example.com", full_name="Demo User")
    codes = enrol(user)
    plans = {
        name: PlanFactory(
            name=name,
            vcpus=vcpus,
            memory_mib=mib,
            disk_gib=gib,
            guest_type="container",
            price_hourly_running=Decimal(price),
            price_hourly_stopped=Decimal("0.3000"),
            requires_approval=approval,
            sort_order=order,
        )
        for order, (name, vcpus, mib, gib, price, approval) in enumerate(
            [
                ("bronze", 1, 1024, 20, "0.7500", False),
                ("silver", 2, 4096, 50, "2.5000", False),
                ("gold", 4, 8192, 100, "5.0000", True),
            ]
        )
    }
    image = ImageFactory(name="debian-12-lxc", os_name="Debian 12 (bookworm)", guest_type="container")
    ImageReference.objects.create(image=image, hypervisor=simulator, ref="tmpl-debian-12-lxc")
    project = build_showcase(user=user, hypervisor=simulator, plans=plans, images={"container": image})
    vms = {vm.name: vm for vm in project.vms.all()}
    assert Image.objects.count() == 1
    webhook = build_notifications_showcase(user=user, project=project, failed_vm=vms["staging"])
    return {"user": user, "device": codes.device, "project": project, "vms": vms, "webhook": webhook}


def browser_as(new_page, client, live_server, user, device, viewport=DESKTOP, scheme="light"):
    """A browser carrying a session made by the test client (password and 2FA already done:
    the journey test drives those forms)."""
    login_verified(client, user, device)
    page = new_page(viewport=viewport, color_scheme=scheme)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])
    return page


def save_screenshot(page, path: Path, *, full_page: bool) -> None:
    """A PNG reduced to a 128-colour palette: the docs keep them small."""
    from PIL import Image as PILImage

    page.mouse.move(0, 0)
    page.screenshot(path=str(path), full_page=full_page)
    PILImage.open(path).convert("RGB").quantize(colors=128).save(path, optimize=True)


def tour() -> bool:
    """SAVE_SCREENSHOTS=all: every page in every mode to var/tour/, to look at (never committed)."""
    return os.environ.get("SAVE_SCREENSHOTS") == "all"


def shots_dir(tmp_path) -> Path:
    if tour():
        path = Path(settings.BASE_DIR) / "var" / "tour"
        path.mkdir(parents=True, exist_ok=True)
        return path
    if os.environ.get("SAVE_SCREENSHOTS") == "1":
        path = Path(settings.BASE_DIR) / "docs" / "screenshots"
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path


@pytest.mark.parametrize(
    ("viewport", "scheme", "suffix"),
    [
        (DESKTOP, "light", "desktop"),
        (PHONE, "light", "phone"),
        (DESKTOP, "dark", "desktop-dark"),
        (PHONE, "dark", "phone-dark"),
    ],
)
def test_main_pages_render_cleanly(new_page, client, live_server, showcase, viewport, scheme, suffix, tmp_path):
    page = browser_as(new_page, client, live_server, showcase["user"], showcase["device"], viewport, scheme)
    out = shots_dir(tmp_path)
    ids = {
        "slug": showcase["project"].slug,
        "active": showcase["vms"]["web-1"].pk,
        "stopped": showcase["vms"]["db-1"].pk,
        "building": showcase["vms"]["ci-runner"].pk,
        "failed": showcase["vms"]["staging"].pk,
        "webhook": showcase["webhook"].pk,
    }
    for name, path in PAGES:
        page.goto(path.format(**ids))
        expect(page.locator("main h1").first).to_be_visible()
        if tour() or (name in KEPT and suffix in ("desktop", "phone")) or (name == "dashboard" and "dark" in suffix):
            save_screenshot(page, out / f"{name}-{suffix}.png", full_page=suffix == "desktop")
        # Keyboard users: the skip link is the first stop and lands on the content
        page.keyboard.press("Tab")
        expect(page.locator(".skip-link")).to_be_focused()
        # Nothing is wider than the screen (tables scroll inside their own box)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} is {overflow}px wider than a {viewport['width']}px screen"
        # Every form control has a name a screen reader can read
        unlabelled = page.evaluate(
            """[...document.querySelectorAll('main input:not([type=hidden]), main select, main textarea')]
               .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
               .map(el => el.name)"""
        )
        assert unlabelled == [], f"{name}: unlabelled controls {unlabelled}"
        popovers = popovers_off_screen(page)
        assert popovers == [], f"{name}: popovers off the {viewport['width']}px screen: {popovers}"
        if "dark" in suffix:
            assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(15, 18, 22)"
    assert page.errors == []


def test_the_theme_toggle_switches_and_is_remembered(new_page, client, live_server, showcase):
    page = browser_as(new_page, client, live_server, showcase["user"], showcase["device"])
    page.goto(f"/projects/{showcase['project'].slug}/dashboard/")
    toggle = page.get_by_role("button", name="Switch to dark theme")
    toggle.click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(page.get_by_role("button", name="Switch to light theme")).to_be_visible()


def test_the_admin_landing_page_lists_what_needs_attention(new_page, client, live_server, showcase, tmp_path):
    operator = UserFactory(is_staff=True, is_superuser=True)
    page = browser_as(new_page, client, live_server, operator, enrol(operator).device)
    page.goto("/admin/")
    attention = page.locator("#attention")
    expect(attention.get_by_role("region", name="Pending requests")).to_contain_text("gpu-box")
    expect(attention.get_by_role("region", name="Failed operations")).to_contain_text("staging")
    save_screenshot(page, shots_dir(tmp_path) / "admin-desktop.png", full_page=False)
    assert page.errors == []
