"""The console page in a real browser, through the real console proxy process, on a
simulator VM: noVNC shows the guest's screen and types into it, xterm.js runs the serial
console, and the page says so when the session ends. With ``SAVE_SCREENSHOTS=1`` the
screen goes to docs/screenshots/console-simulator-desktop.png."""

import pytest
from playwright.sync_api import expect

from tests.browser.test_pages import browser_as, save_screenshot, shots_dir
from tests.fixtures.browser import PHONE, PageErrors, popovers_off_screen, wait_for_value
from tests.fixtures.console import running_sim_vm
from workers.drivers.simulator import console
from workers.drivers.simulator.console import Screen, render
from workers.drivers.simulator.driver import store_for

pytestmark = pytest.mark.browser

CANVAS_COLOURS = """() => {
  const canvas = document.querySelector('#console-screen canvas');
  if (!canvas || !canvas.width) return 0;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const seen = new Set();
  for (let i = 0; i < data.length; i += 4 * 7) seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
  return seen.size;
}"""
CANVAS_DIGEST = """() => {
  const canvas = document.querySelector('#console-screen canvas');
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let sum = 0;
  for (let i = 0; i < data.length; i += 4) sum = (sum * 31 + data[i] + data[i + 1] + data[i + 2]) % 1000000007;
  return sum;
}"""


@pytest.fixture
def console_vm(transactional_db, user, project, plan, image, simulator, console_proxy, settings):
    settings.CONSOLE_PROXY_URL = console_proxy.url
    return running_sim_vm(project=project, user=user, plan=plan, image=image, hypervisor=simulator, name="demo-vm")


def screen_digest(screen: Screen) -> int:
    """CANVAS_DIGEST of the picture the simulator draws for ``screen``."""
    digest = 0
    for value in render(screen, console._font()).reshape(-1, 3).sum(axis=1).tolist():
        digest = (digest * 31 + value) % 1000000007
    return digest


def test_the_screen_shows_types_and_ends_with_the_vm(
    new_page, client, live_server, user, project, console_vm, tmp_path
):
    screen = Screen(title=f"{console_vm.name} ({console_vm.backend_id}) on simulator {console_vm.hypervisor.name}")
    page = browser_as(new_page, client, live_server, user, None)
    page.goto(f"/projects/{project.slug}/vms/{console_vm.pk}/")
    with page.context.expect_page() as opened:
        page.get_by_role("link", name="Console").click()
    page = opened.value
    page.errors = PageErrors(page).errors
    expect(page.locator("#console-status")).to_contain_text("Connected")
    expect(page.get_by_role("button", name="Reconnect")).to_be_hidden()
    # The canvas shows exactly the guest's screen, pixel for pixel
    wait_for_value(page, CANVAS_DIGEST, screen_digest(screen).__eq__)
    # Paste text: typed into the guest as keystrokes
    page.get_by_text("Paste text").click()
    page.get_by_label("Typed into the console as keystrokes").fill("uptime\n")
    page.get_by_role("button", name="Type it").click()
    screen.key("uptime")
    screen.enter()
    wait_for_value(page, CANVAS_DIGEST, screen_digest(screen).__eq__)
    # The keyboard: click the screen and type
    page.locator("#console-screen canvas").click()
    page.keyboard.type("root")
    screen.key("root")
    wait_for_value(page, CANVAS_DIGEST, screen_digest(screen).__eq__)
    save_screenshot(page, shots_dir(tmp_path) / "console-simulator-desktop.png", full_page=False)
    # The page and its Paste box fit a 1366 px laptop and a 390 px phone
    for width in (1366, PHONE["width"]):
        page.set_viewport_size({"width": width, "height": 800})
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0, width
        assert popovers_off_screen(page) == [], width
    page.set_viewport_size({"width": 1366, "height": 800})
    # Ctrl-Alt-Del reaches the guest (the simulator "reboots" its screen)
    page.get_by_role("button", name="Ctrl-Alt-Del").click()
    screen.ctrl_alt_del()
    wait_for_value(page, CANVAS_DIGEST, screen_digest(screen).__eq__)
    # The VM stops: the page says the session ended and offers to reconnect
    store_for(console_vm.hypervisor.connection["state_path"]).set_power(console_vm.backend_id, "stopped")
    expect(page.locator("#console-status")).to_contain_text("session ended", timeout=15_000)
    expect(page.get_by_role("button", name="Reconnect")).to_be_visible()
    assert page.errors == []


def test_the_serial_console_runs_in_xterm(new_page, client, live_server, user, project, console_vm):
    page = browser_as(new_page, client, live_server, user, None)
    page.goto(f"/projects/{project.slug}/vms/{console_vm.pk}/console/?protocol=serial")
    expect(page.locator("#console-status")).to_contain_text("Connected")
    rows = page.locator(".xterm-rows")
    expect(rows).to_contain_text("login:")
    page.locator(".xterm").click()
    page.keyboard.type("ls -l")
    page.keyboard.press("Enter")
    expect(rows).to_contain_text("ls: simulated guest, nothing runs here")
    assert page.errors == []


def test_a_used_link_from_the_api_says_so(new_page, client, live_server, user, console_vm):
    client.force_login(user)
    link = client.post(f"/api/v1/virtual-machines/{console_vm.pk}/console/", {}, content_type="application/json")
    url = link.json()["url"].replace("http://testserver", live_server.url)
    page = new_page()
    page.goto(url)
    expect(page.locator("#console-status")).to_contain_text("lost or refused")  # another origin: testserver
    page.reload()
    expect(page.locator("#console-status")).to_contain_text("has been used")
