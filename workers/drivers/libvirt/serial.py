"""A libvirt domain's serial console as a TCP stream for the console proxy.

libvirt hands out a serial console as a stream on the libvirt connection
(``virDomainOpenConsole``; works over ``qemu+ssh://`` too). Each connection to the
guest's loopback port (workers/drivers/loopback.py) opens the console (taking it over from
anyone else: ``VIR_DOMAIN_CONSOLE_FORCE``) and pumps bytes both ways until either side ends.
Needs a pty serial port: the hypervisor's ``serial_log_dir`` unset.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from xml.etree import ElementTree

import libvirt

from ..base import PermanentDriverError


def require_pty_console(xml: str) -> None:
    if ElementTree.fromstring(xml).find("devices/console[@type='pty']") is None:
        raise PermanentDriverError(
            "This guest's serial port is logged to a file (serial_log_dir): its serial console cannot be opened.",
            code="no_console",
        )


def serve(sock: socket.socket, connect: Callable[[], libvirt.virConnect], backend_id: str) -> None:
    conn = connect()
    stream = conn.newStream(0)
    conn.lookupByUUIDString(backend_id).openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
    threading.Thread(target=_guest_to_client, args=(stream, sock), daemon=True).start()
    try:
        while data := sock.recv(4096):
            stream.send(data)
    finally:
        try:
            stream.abort()
        except libvirt.libvirtError:
            pass  # already closed by the guest's side


def _guest_to_client(stream: libvirt.virStream, sock: socket.socket) -> None:
    try:
        while data := stream.recv(4096):
            sock.sendall(data)
    except (libvirt.libvirtError, OSError):
        pass
    finally:
        sock.shutdown(socket.SHUT_RDWR)
