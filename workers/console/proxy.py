"""The console proxy: a browser's WebSocket in, the guest's console out, built on websockify.

One process (``manage.py console_proxy``; systemd unit ``controlplane-console``), one
thread per connection. For each WebSocket upgrade request:

1. The one-time token (``?token=``) is used up in the database together with the
   request's ``Origin`` and client address (``compute.services.console_session_consume``).
   A refusal answers HTTP 403 before the upgrade; no hypervisor is asked.
2. The VM's driver says where its console is (``Driver.console`` → ``ConsoleTarget``);
   only this process ever sees the hypervisor's address or ticket.
3. The WebSocket is accepted and bytes are relayed (websockify's ``do_proxy``) between
   the browser and the target; ``console.opened`` and, at the end, ``console.closed``
   with the duration are audited.
"""

from __future__ import annotations

import json
import logging
import re
import select
import socket
from dataclasses import dataclass, field
from http import HTTPStatus
from socketserver import ThreadingMixIn
from urllib.parse import parse_qs, urlparse

from django.conf import settings
from django.db import connections
from websockify.websocketproxy import ProxyRequestHandler
from websockify.websocketserver import WebSocketServer

from audit.request_meta import new_request_id
from compute import services
from compute.models import ConsoleSession
from controlplane.errors import ServiceError

from ..drivers.base import Capability, ConsoleProtocol, ConsoleTarget, DriverError, driver_class
from ..engine import driver_for
from .upstream import (
    Reader,
    UpstreamError,
    WebSocketClient,
    pve_terminal_hello,
    pve_terminal_input,
    rfb_greet_browser,
    rfb_login_upstream,
)

logger = logging.getLogger(__name__)


class ConsoleRefused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class ConnectionMeta:
    """What audit and the token bindings read from a request, for a proxy connection."""

    META: dict[str, str]
    request_id: str = field(default_factory=new_request_id)

    @classmethod
    def of(cls, handler) -> ConnectionMeta:
        headers = handler.headers
        return cls(
            META={
                "REMOTE_ADDR": handler.client_address[0] if handler.client_address else "",
                "HTTP_X_FORWARDED_FOR": headers.get("X-Forwarded-For", ""),
                "HTTP_USER_AGENT": headers.get("User-Agent", ""),
            }
        )


def console_target(session: ConsoleSession) -> ConsoleTarget:
    """Ask the VM's hypervisor where the console is (after the token was accepted)."""
    hypervisor = session.vm.hypervisor
    if not driver_class(hypervisor.kind).supports(Capability.CONSOLE):
        raise ConsoleRefused(HTTPStatus.NOT_IMPLEMENTED, f"Hypervisor {hypervisor.name} offers no console.")
    try:
        target = driver_for(hypervisor).console(session.vm.backend_id, protocol=session.protocol)
    except DriverError as exc:
        raise ConsoleRefused(HTTPStatus.BAD_GATEWAY, exc.message) from exc
    if not (target.browser_url or target.websocket_url or (target.host and target.port)):
        raise ConsoleRefused(HTTPStatus.NOT_IMPLEMENTED, "This hypervisor's console is not reached through us.")
    return target


TOKEN_IN_PATH = re.compile(r"token=[^&'\s]*")


class ConsoleRequestHandler(ProxyRequestHandler):
    """websockify's proxy handler, with our token check and target lookup per connection."""

    session: ConsoleSession | None = None
    target: ConsoleTarget | None = None

    def log_message(self, format, *args):
        """websockify logs request paths: never the token in them."""
        super().log_message(format, *(TOKEN_IN_PATH.sub("token=…", a) if isinstance(a, str) else a for a in args))

    def handle_upgrade(self):
        try:
            super().handle_upgrade()  # validate_connection() first, then the WebSocket handshake
        except ConsoleRefused as exc:
            logger.warning("console refused: %s (%s)", exc.message, self.client_address[0])
            self.send_error(exc.status, exc.message)
        except Exception:
            logger.exception("console connection failed before the upgrade")
            self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "The console proxy could not check this connection.")

    def validate_connection(self):
        token = (parse_qs(urlparse(self.path).query).get("token") or [""])[0]
        self.meta = ConnectionMeta.of(self)
        try:
            self.session = services.console_session_consume(
                token=token, request=self.meta, origin=self.headers.get("Origin", "")
            )
        except ServiceError as exc:
            raise ConsoleRefused(HTTPStatus.FORBIDDEN, exc.message) from exc
        try:
            self.target = console_target(self.session)
        except ConsoleRefused as exc:
            services.console_session_refuse(session=self.session, reason=exc.message)
            raise
        services.console_session_start(session=self.session, request=self.meta)

    def new_websocket_client(self):
        if self.target.browser_url:
            # The hypervisor's own console page (nova's noVNC): one text message sends the
            # page there (static/console/console.js); consoles otherwise only send binary.
            self.request._sendmsg(0x1, json.dumps({"redirect": self.target.browser_url}).encode())
            self._close("sent to the hypervisor's own console")
            raise self.CClose(1000, "redirected")
        if self.target.websocket_url:
            self._relay_websocket()
            return
        outcome = "ended"
        try:
            target = socket.create_connection(
                (self.target.host, self.target.port), timeout=settings.CONSOLE_CONNECT_TIMEOUT_SECONDS
            )
        except OSError as exc:
            outcome = f"could not reach the console: {exc}"
            self._close(outcome)
            raise self.CClose(1011, "The console could not be reached.") from exc
        target.settimeout(None)
        target.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.do_proxy(target)
        except self.CClose as exc:
            outcome = "the console ended" if exc.args[1:] == ("Target closed",) else "the browser closed it"
            raise
        except Exception as exc:
            outcome = f"error: {exc}"
            raise
        finally:
            target.close()
            self._close(outcome)

    # -- a console that is itself a WebSocket (Proxmox), see upstream.py ----------------------
    def _browser_receive(self) -> bytes | None:
        while True:
            bufs, closed = self.recv_frames()  # blocks until a frame arrives
            if bufs:
                return b"".join(bufs)
            if closed:
                return None

    def _browser_send(self, data: bytes) -> None:
        pending = self.send_frames([data])
        while pending:
            select.select([], [self.request], [], 1)
            pending = self.send_frames()

    def _relay_websocket(self) -> None:
        target, outcome = self.target, "ended"
        try:
            upstream = WebSocketClient(headers=target.headers, verify=target.verify).open(
                target.websocket_url, timeout=settings.CONSOLE_CONNECT_TIMEOUT_SECONDS
            )
        except Exception as exc:
            self._close(f"could not reach the console: {exc}")
            raise self.CClose(1011, "The console could not be reached.") from exc
        try:
            upstream.socket.settimeout(None)
            send_up = self._log_in(upstream)
            while True:
                ready = select.select([self.request, upstream.socket], [], [], 1)[0]
                if self.request in ready or self.request.pending():
                    bufs, closed = self.recv_frames()
                    for buf in bufs:
                        send_up(buf)
                    if closed:
                        outcome = "the browser closed it"
                        raise self.CClose(closed["code"], closed["reason"])
                if upstream.readable():
                    data = upstream.receive()
                    if data is None:
                        outcome = "the console ended"
                        raise self.CClose(1000, "Target closed")
                    self._browser_send(data)
        except UpstreamError as exc:
            outcome = f"the console refused the proxy: {exc}"
            raise self.CClose(1011, "The console refused the connection.") from exc
        finally:
            upstream.close()
            self._close(outcome)

    def _log_in(self, upstream: WebSocketClient):
        """The console's own login, done by the proxy; returns how to send the browser's bytes up."""
        target, up = self.target, Reader(upstream.receive)
        if target.protocol == ConsoleProtocol.VNC:
            browser = Reader(self._browser_receive)
            rfb_login_upstream(up, upstream.sendmsg, target.password)
            rfb_greet_browser(browser, self._browser_send)
            send_up = upstream.sendmsg
        else:
            upstream.send_text(pve_terminal_hello(target.username, target.password))
            if up.read(2) != b"OK":
                raise UpstreamError("the terminal did not accept the ticket")
            browser = Reader(self._browser_receive)

            def send_up(data: bytes) -> None:
                upstream.send_text(pve_terminal_input(data))

        if up.buffer:
            self._browser_send(up.rest())
        if browser.buffer:
            send_up(browser.rest())
        return send_up

    def _close(self, outcome: str) -> None:
        services.console_session_close(session=self.session, outcome=outcome, request=self.meta)

    def finish(self):
        try:
            super().finish()
        finally:
            connections.close_all()  # this thread's database connections


class ConsoleProxyServer(ThreadingMixIn, WebSocketServer):
    """A threaded HTTP server that only upgrades to WebSockets (like websockify's LibProxyServer)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], *, heartbeat: int = 30, verbose: bool = False):
        self.only_upgrade = True  # plain GET: 405
        self.verbose = verbose
        self.heartbeat = heartbeat
        self.token_plugin = self.auth_plugin = None
        self.target_host = self.target_port = None
        self.unix_target = self.wrap_cmd = self.ssl_target = None
        self.unix_listen = None
        self.daemon = self.run_once = self.record = False
        self.handler_id = 0
        super().__init__(address, ConsoleRequestHandler)


def serve(listen: str, *, verbose: bool = False) -> None:
    host, _, port = listen.rpartition(":")
    server = ConsoleProxyServer((host.strip("[]") or "0.0.0.0", int(port)), verbose=verbose)
    logger.info("console proxy listening on %s", listen)
    try:
        server.serve_forever()
    finally:
        server.server_close()
