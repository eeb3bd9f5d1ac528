"""Where a domain's VNC screen is: the ``<graphics>`` element of its live XML (libvirt picks
the port with ``autoport``) and the address the console proxy should connect to."""

from __future__ import annotations

from urllib.parse import urlparse
from xml.etree import ElementTree

from ..base import PermanentDriverError
from .options import LibvirtSettings

WILDCARDS = {"0.0.0.0", "::", ""}
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def vnc_endpoint(xml: str) -> tuple[str, int]:
    """(listen address, port) of the running domain's VNC server."""
    graphics = ElementTree.fromstring(xml).find("devices/graphics[@type='vnc']")
    if graphics is None:
        raise PermanentDriverError("This guest has no screen (no VNC graphics device).", code="no_console")
    port = int(graphics.get("port") or -1)
    if port <= 0:
        raise PermanentDriverError("The guest's screen has no port yet: is it running?", code="no_console")
    listen = graphics.find("listen[@type='address']")
    address = listen.get("address") if listen is not None else graphics.get("listen")
    return address or "", port


def connect_host(settings: LibvirtSettings, listen: str) -> str:
    """The address the proxy dials: ``console_host``; else the listen address; for a
    wildcard listen, the host named in the libvirt URI (loopback for a local URI)."""
    if settings.console_host:
        return settings.console_host
    uri_host = urlparse(settings.uri).hostname or ""
    if listen in WILDCARDS:
        return uri_host or "127.0.0.1"
    if listen in LOOPBACK and uri_host and uri_host not in LOOPBACK:
        raise PermanentDriverError(
            f"Screens on {uri_host} listen on loopback only: set the hypervisor's vnc_listen (or console_host) "
            "to an address the console proxy can reach.",
            code="misconfigured",
        )
    return listen
