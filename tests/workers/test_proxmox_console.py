"""Proxmox consoles through the running console proxy, against fakepve as its own process.

fakepve models PVE's console endpoints: ``vncproxy``/``termproxy`` issue a ticket good
for one connection for 40 s, ``vncwebsocket`` checks it (user, age, match) and serves an
RFB 3.8 server with VNC authentication (the ticket is the password) or PVE's terminal
protocol. The browser side must see neither the ticket nor VNC authentication."""

import pytest

from compute.models import Hypervisor
from tests.fakepve_server import credentials
from tests.fixtures.console import RFBClient, distinct_colours, ws_connect
from tests.workers.contract import wait_done
from workers.drivers.base import HypervisorConfig
from workers.drivers.proxmox import ProxmoxDriver

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pve_vm(fakepve_server, proxmox_spec, make_active_vm, console_proxy):
    driver = ProxmoxDriver(
        HypervisorConfig(
            name="pve-console", kind="proxmox", settings=fakepve_server.settings(), credentials=credentials()
        )
    )
    task = driver.create(proxmox_spec())
    status = wait_done(driver, task, 60)
    backend_id = (status.vm.backend_id if status.vm else None) or task.backend_id
    driver.close()
    hypervisor = Hypervisor.objects.create(
        name="pve-console",
        kind="proxmox",
        queue="pve-console",
        connection=fakepve_server.settings(),
        credentials=credentials(),
    )
    return make_active_vm(hypervisor=hypervisor, backend_id=backend_id, name="pve-guest")


def token_for(api, vm, protocol):
    response = api.post(f"/api/v1/virtual-machines/{vm.pk}/console/", {"protocol": protocol}, format="json")
    return response.json()["websocket_url"].split("token=", 1)[1]


def test_the_screen_through_the_proxy_with_the_ticket_kept_server_side(api, pve_vm, console_proxy):
    rfb = RFBClient(ws_connect(console_proxy.url, token=token_for(api, pve_vm, "vnc")))
    # the browser is offered security type None: the proxy answered PVE's VNC authentication
    width, height, name = rfb.handshake()
    assert rfb.security_types == [1]
    assert name == "web-1" and (width, height) == (4, 2)  # fakepve's default 4x2 screen
    assert distinct_colours(rfb.framebuffer()) > 2
    rfb.ws.close()


def test_the_serial_terminal_through_the_proxy(api, pve_vm, console_proxy):
    ws = ws_connect(console_proxy.url, token=token_for(api, pve_vm, "serial"))
    assert ws.receive() == b"starting serial terminal on interface serial0\r\n"  # PVE's "OK" was eaten
    ws.sendmsg(b"uname -a\r")
    assert ws.receive() == b"uname -a\r"  # fakepve echoes what reached the terminal
    ws.close()
