"""libvirt real tier: a real QEMU guest's screen through the running console proxy.

The guest boots with ``console=tty0`` as well, so the kernel writes its log on the VGA
screen. A test client completes the RFB handshake through the proxy and reads a
framebuffer with the guest's text on it; Chromium opens the console page and noVNC draws
the same screen (``SAVE_SCREENSHOTS=1``: docs/screenshots/console-libvirt-desktop.png)."""

import time
import uuid

import pytest
from playwright.sync_api import expect

from compute.models import Hypervisor
from tests.browser.test_console import CANVAS_COLOURS
from tests.browser.test_pages import browser_as, save_screenshot, shots_dir
from tests.fixtures.browser import PageErrors, wait_for_value
from tests.fixtures.console import RFBClient, distinct_colours, sessions_recorded_closed, ws_connect
from tests.workers.contract import wait_done
from tests.workers.libvirt_support import (
    GUEST_IMAGE_REF,
    REAL_SETTINGS,
    libvirt_driver,
    real_host,
    spec_factory,
    wait_serial,
)
from workers.drivers.libvirt.domain import domain_name

SCREEN_IMAGE_REF = (
    "cptest-base.qcow2?kernel=cptest-vmlinuz&initrd=cptest-initrd.img&cmdline=console=tty0+console=ttyS0+panic=-1"
)


@pytest.fixture(scope="module")
def host():
    yield from real_host()


@pytest.fixture(scope="module")
def guest(host):
    """One booted guest for the module: (spec, backend id)."""
    driver = libvirt_driver("libvirt-console", REAL_SETTINGS)
    spec = spec_factory(SCREEN_IMAGE_REF)()
    task = driver.create(spec)
    status = wait_done(driver, task, 120)
    backend_id = (status.vm.backend_id if status.vm else None) or task.backend_id
    wait_serial(domain_name(spec), "GUEST-READY", timeout=120)
    yield spec, backend_id
    wait_done(driver, driver.delete(backend_id), 60)


@pytest.fixture
def vm(transactional_db, guest, make_active_vm, console_proxy, settings):
    settings.CONSOLE_PROXY_URL = console_proxy.url
    spec, backend_id = guest
    hypervisor = Hypervisor.objects.create(
        name="libvirt-console", kind="libvirt", queue="libvirt-console", connection=REAL_SETTINGS
    )
    return make_active_vm(hypervisor=hypervisor, backend_id=backend_id, name="real-guest")


def test_an_rfb_client_through_the_proxy_reads_the_guests_screen(api, vm, guest, console_proxy):
    link = api.post(f"/api/v1/virtual-machines/{vm.pk}/console/", {}, format="json").json()
    rfb = RFBClient(ws_connect(console_proxy.url, token=link["websocket_url"].split("token=", 1)[1]))
    width, height, name = rfb.handshake()
    assert domain_name(guest[0]) in name  # QEMU names the desktop after the domain
    screen = rfb.framebuffer()
    assert width >= 640 and height >= 400
    lit = sum(1 for i in range(0, len(screen), 4) if any(screen[i : i + 3]))
    assert distinct_colours(screen) >= 2 and lit > 1000, f"{lit} lit pixels"
    rfb.ws.close()
    sessions_recorded_closed()


@pytest.mark.browser
def test_chromium_shows_the_real_guests_screen(
    new_page, client, live_server, user, project, vm, console_proxy, tmp_path, settings
):
    settings.CONSOLE_PROXY_URL = console_proxy.url
    page = browser_as(new_page, client, live_server, user, None)
    page.errors = PageErrors(page).errors
    page.goto(f"/projects/{project.slug}/vms/{vm.pk}/console/")
    expect(page.locator("#console-status")).to_contain_text("Connected", timeout=30_000)
    wait_for_value(page, CANVAS_COLOURS, lambda colours: colours >= 2, timeout=30)
    save_screenshot(page, shots_dir(tmp_path) / "console-libvirt-desktop.png", full_page=False)
    assert page.errors == []


PTY_SETTINGS = {**REAL_SETTINGS, "serial_log_dir": ""}  # a pty serial port: its console can be opened


@pytest.fixture(scope="module")
def pty_guest(host):
    driver = libvirt_driver("libvirt-console-pty", PTY_SETTINGS)
    task = driver.create(spec_factory(GUEST_IMAGE_REF)())
    status = wait_done(driver, task, 120)
    backend_id = (status.vm.backend_id if status.vm else None) or task.backend_id
    yield backend_id
    wait_done(driver, driver.delete(backend_id), 60)


def test_the_serial_console_through_the_proxy_reaches_the_guests_tty(
    transactional_db, api, pty_guest, make_active_vm, console_proxy
):
    hypervisor = Hypervisor.objects.create(
        name="libvirt-pty", kind="libvirt", queue="libvirt-pty", connection=PTY_SETTINGS
    )
    vm = make_active_vm(hypervisor=hypervisor, backend_id=pty_guest, name="pty-guest")
    link = api.post(f"/api/v1/virtual-machines/{vm.pk}/console/", {"protocol": "serial"}, format="json").json()
    ws = ws_connect(console_proxy.url, token=link["websocket_url"].split("token=", 1)[1])
    ws.socket.settimeout(2)
    # The guest's tty echoes what it receives once it has booted: keep typing until it does.
    seen, marker, deadline = b"", f"cp-{uuid.uuid4().hex[:8]}", time.monotonic() + 120
    while marker.encode() not in seen:
        assert time.monotonic() < deadline, f"no echo of {marker} from the guest: {seen[-500:]!r}"
        ws.sendmsg(f"{marker}\n".encode())
        try:
            while chunk := ws.receive():
                seen += chunk
        except TimeoutError:
            pass
    ws.close()
    sessions_recorded_closed()
