"""Consoles of Proxmox guests (``Capability.CONSOLE``), as PVE's own noVNC does it.

``POST nodes/{node}/qemu/{vmid}/vncproxy websocket=1`` (the screen) or ``termproxy``
(the serial terminal) returns a one-connection ticket and a port; the console is then
the WebSocket ``GET nodes/{node}/qemu/{vmid}/vncwebsocket?port=…&vncticket=…``, opened
with the API token. The screen's VNC password is the ticket; the terminal's first
message is ``user:ticket``. The console proxy does both logins (workers/console/upstream.py).
Containers (LXC) are not offered yet.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from ..base import ConsoleProtocol, ConsoleTarget, PermanentDriverError
from .client import Code, ProxmoxClient
from .guests import Guest


def console_target(client: ProxmoxClient, credentials: dict[str, Any], guest: Guest, protocol: str) -> ConsoleTarget:
    if guest.kind != "qemu":
        raise PermanentDriverError("Consoles of Proxmox containers are not offered yet.", code="no_console")
    if guest.status != "running":
        raise PermanentDriverError(f"{guest.name} is not running: start it to use its console.", code="off")
    token_id, secret = credentials.get("token_id"), credentials.get("token_secret")
    if not (token_id and secret):
        raise PermanentDriverError(
            "Proxmox consoles need API token credentials (token_id + token_secret).", code=Code.MISCONFIGURED
        )
    base = f"nodes/{guest.node}/qemu/{guest.vmid}"
    if protocol == ConsoleProtocol.VNC:
        proxy = client.post(f"{base}/vncproxy", websocket=1)
    else:
        proxy = client.post(f"{base}/termproxy")
    query = urlencode({"port": proxy["port"], "vncticket": proxy["ticket"]})
    return ConsoleTarget(
        protocol=protocol,
        websocket_url=f"wss://{client.host}:{client.port}/api2/json/{base}/vncwebsocket?{query}",
        headers={"Authorization": f"PVEAPIToken={token_id}={secret}"},
        verify=client.verify,
        username=str(proxy.get("user") or token_id.split("!")[0]),
        password=str(proxy["ticket"]),
    )
