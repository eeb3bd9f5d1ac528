"""The proxy's side of a console that is itself a WebSocket (Proxmox ``vncwebsocket``):
a WebSocket client, the RFB logins on both sides, and PVE's terminal framing.

For a VNC console the proxy logs in to the hypervisor's VNC server with the ticket
(VNC authentication, DES) and offers the browser security type None: the ticket never
leaves the proxy. Then both sides are at ClientInit and bytes are relayed unchanged.
For a Proxmox terminal (``termproxy``) the proxy sends PVE's ``user:ticket`` hello, eats
the ``OK`` and wraps the browser's keystrokes as ``0:<length>:<data>``.
"""

from __future__ import annotations

import select
import socket
import ssl
import struct
from collections.abc import Callable
from urllib.parse import urlparse

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from websockify.websocket import WebSocket, WebSocketWantReadError

RFB_VERSION = b"RFB 003.008\n"
SECURITY_NONE, SECURITY_VNC = 1, 2


class UpstreamError(Exception):
    pass


class WebSocketClient(WebSocket):
    """websockify's WebSocket client, which drops the URL's query string and takes no
    extra headers or TLS options: this one keeps the query, sends ``headers`` and
    verifies TLS as told (True, False, or a CA bundle path)."""

    def __init__(self, *, headers: dict[str, str] | None = None, verify: bool | str = True):
        super().__init__()
        self._headers, self._verify, self._query = dict(headers or {}), verify, ""

    def open(self, url: str, *, origin: str | None = None, timeout: float = 10) -> WebSocketClient:
        parsed = urlparse(url)
        secure = parsed.scheme in ("wss", "https")
        port = parsed.port or (443 if secure else 80)
        sock = socket.create_connection((parsed.hostname, port), timeout=timeout)
        if secure:
            context = ssl.create_default_context(cafile=self._verify if isinstance(self._verify, str) else None)
            if self._verify is False:
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            sock = context.wrap_socket(sock, server_hostname=parsed.hostname)
        # websockify 0.13's connect() is a state machine; handing it our (TLS) socket in the
        # "headers" state skips its own socket creation.
        self.socket, self._state, self._query = sock, "headers", parsed.query
        self.connect(url, origin=origin)
        # Frames that came with the 101 response stay in the buffer undecoded (websockify
        # decodes only after its next socket read, which would wait for more data).
        while (frame := self._decode_hybi(self._recv_buffer)) is not None:
            self._recv_buffer = self._recv_buffer[frame["length"] :]
            self._recv_queue.append(frame)
        return self

    def send_request(self, type, path):
        super().send_request(type, f"{path}?{self._query}" if self._query else path)

    def end_headers(self):
        for name, value in self._headers.items():
            self.send_header(name, value)
        super().end_headers()

    def _decode_hybi(self, buf):
        frame = super()._decode_hybi(buf)
        if frame is not None and frame["opcode"] == 0x1:
            frame["opcode"] = 0x2  # a text message is read as its UTF-8 bytes (websockify would close)
        return frame

    def send_text(self, data: bytes) -> None:
        self._sendmsg(0x1, data)

    def readable(self) -> bool:
        """Data waits in our queue or TLS buffer, or select() would say so."""
        pending_tls = isinstance(self.socket, ssl.SSLSocket) and self.socket.pending()
        return self.pending() or bool(pending_tls) or bool(select.select([self.socket], [], [], 0)[0])

    def receive(self) -> bytes | None:
        """The next message's bytes (text as UTF-8), or None when the peer closed."""
        while True:
            try:
                return self.recvmsg()
            except WebSocketWantReadError:
                continue


class Reader:
    """Exact-length reads over a message-based receive function, keeping what is left over."""

    def __init__(self, receive: Callable[[], bytes | None]):
        self.receive, self.buffer = receive, b""

    def read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.receive()
            if chunk is None:
                raise UpstreamError("the console closed during the login")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def rest(self) -> bytes:
        data, self.buffer = self.buffer, b""
        return data


def vnc_auth_response(password: str, challenge: bytes) -> bytes:
    """VNC authentication: the challenge DES-encrypted with the password (8 bytes, bits reversed)."""
    key = (password.encode() + b"\0" * 8)[:8]
    key = bytes(int(f"{byte:08b}"[::-1], 2) for byte in key)
    encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()  # 3 x one key = single DES
    return encryptor.update(challenge) + encryptor.finalize()


def rfb_login_upstream(reader: Reader, send: Callable[[bytes], None], password: str) -> None:
    """Log in to the hypervisor's VNC server (RFB 3.8) up to ClientInit."""
    if not reader.read(12).startswith(b"RFB 003."):
        raise UpstreamError("the console does not speak RFB")
    send(RFB_VERSION)
    types = reader.read(reader.read(1)[0])
    if not types:
        raise UpstreamError(reader.read(struct.unpack(">I", reader.read(4))[0]).decode(errors="replace"))
    if password and SECURITY_VNC in types:
        send(bytes([SECURITY_VNC]))
        send(vnc_auth_response(password, reader.read(16)))
    elif SECURITY_NONE in types:
        send(bytes([SECURITY_NONE]))
    else:
        raise UpstreamError(f"no security type we can answer among {list(types)}")
    if struct.unpack(">I", reader.read(4))[0] != 0:
        reason = reader.read(struct.unpack(">I", reader.read(4))[0]).decode(errors="replace")
        raise UpstreamError(f"the console refused our login: {reason}")


def rfb_greet_browser(reader: Reader, send: Callable[[bytes], None]) -> None:
    """Be the browser's VNC server up to ClientInit: version, security type None."""
    send(RFB_VERSION)
    version = reader.read(12)
    send(bytes([1, SECURITY_NONE]))
    reader.read(1)
    if version >= b"RFB 003.008":
        send(struct.pack(">I", 0))


def pve_terminal_hello(username: str, ticket: str) -> bytes:
    return f"{username}:{ticket}\n".encode()


def pve_terminal_input(data: bytes) -> bytes:
    """Keystrokes for PVE's termproxy: ``0:<byte length>:<data>``."""
    return b"0:%d:" % len(data) + data
