"""The simulator's built-in console: a tiny RFB (VNC) server and a text (serial) server.

A simulated guest has no screen, so the simulator draws one: an 80x25 text screen
with a login prompt that echoes what is typed, rendered with Pillow and sent as raw
RFB framebuffer updates (RFB 3.3/3.7/3.8, security type None, any true-colour pixel
format the client asks for). The serial console is the same dialogue as plain text.
Ctrl-Alt-Del on the screen "reboots" it (clears it and says so).

Servers listen on loopback (workers/drivers/loopback.py), one port per guest and protocol,
in the process that asked for them (the console proxy). A connection ends when the guest stops being
``running`` in the simulator store, so the browser sees the session end.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy
from PIL import Image, ImageDraw, ImageFont

from ..base import ConsoleProtocol

COLUMNS, ROWS = 80, 25
CELL_W, CELL_H = 8, 16
WIDTH, HEIGHT = COLUMNS * CELL_W, ROWS * CELL_H
FONT_PATHS = ("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",)
BACKGROUND, FOREGROUND = (16, 24, 32), (200, 230, 200)

# keysyms (X11) the screen understands beyond printable ASCII
XK_BACKSPACE, XK_RETURN, XK_DELETE = 0xFF08, 0xFF0D, 0xFFFF
XK_CONTROL, XK_ALT = (0xFFE3, 0xFFE4), (0xFFE9, 0xFFEA, 0xFFE7, 0xFFE8)

# ServerInit pixel format: 32 bpp, depth 24, little endian, true colour, 8 bits per channel
SERVER_PIXEL_FORMAT = struct.pack(">BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)


def _font() -> ImageFont.ImageFont:
    for path in FONT_PATHS:
        try:
            return ImageFont.truetype(path, 13)
        except OSError:
            continue
    return ImageFont.load_default()


@dataclass
class Screen:
    """What the guest shows: lines of text and the line being typed."""

    title: str
    lines: list[str] = field(default_factory=list)
    typed: str = ""
    prompt: str = "login: "

    def __post_init__(self):
        self.boot()

    def boot(self) -> None:
        self.lines = [self.title, "Simulated guest: nothing runs here, but the keyboard works.", ""]
        self.typed = ""

    def key(self, char: str) -> None:
        self.typed += char

    def backspace(self) -> None:
        self.typed = self.typed[:-1]

    def enter(self) -> str:
        """End the typed line; return the guest's answer ("" for an empty line)."""
        self.lines.append(self.prompt + self.typed)
        reply = f"{self.typed.split()[0]}: simulated guest, nothing runs here" if self.typed.strip() else ""
        if reply:
            self.lines.append(reply)
        self.typed = ""
        return reply

    def ctrl_alt_del(self) -> None:
        self.boot()
        self.lines.insert(2, "Ctrl-Alt-Del received: the simulated guest rebooted.")

    def text(self) -> list[str]:
        visible = [*self.lines, self.prompt + self.typed + "_"]
        return [line[:COLUMNS] for line in visible[-ROWS:]]


def render(screen: Screen, font: ImageFont.ImageFont) -> numpy.ndarray:
    """The screen as an RGB array (HEIGHT x WIDTH x 3)."""
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(screen.text()):
        draw.text((4, row * CELL_H), line, fill=FOREGROUND, font=font)
    return numpy.asarray(image, dtype=numpy.uint32)


def encode_pixels(rgb: numpy.ndarray, pixel_format: bytes) -> bytes:
    """RGB pixels in the client's RFB pixel format (true colour, 8/16/32 bpp)."""
    bpp, _depth, big_endian, _true, rmax, gmax, bmax, rshift, gshift, bshift = struct.unpack(
        ">BBBBHHHBBB3x", pixel_format
    )
    value = (
        ((rgb[..., 0] * rmax // 255) << rshift)
        | ((rgb[..., 1] * gmax // 255) << gshift)
        | ((rgb[..., 2] * bmax // 255) << bshift)
    )
    dtype = {8: "u1", 16: "u2", 32: "u4"}[bpp]
    return value.astype((">" if big_endian else "<") + dtype).tobytes()


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    return data


class RFBSession:
    """One VNC client of one simulated screen."""

    MESSAGE_SIZES = {0: 20, 2: 4, 3: 10, 4: 8, 5: 6, 6: 8}  # type byte + fixed part

    def __init__(self, sock: socket.socket, title: str, running: Callable[[], bool]):
        self.sock, self.running = sock, running
        self.screen = Screen(title=title)
        self.font = _font()
        self.pixel_format = SERVER_PIXEL_FORMAT
        self.modifiers: set[int] = set()
        self.wants_update = False
        self.dirty = True

    def handshake(self) -> None:
        self.sock.sendall(b"RFB 003.008\n")
        version = _recv_exact(self.sock, 12)
        minor = int(version[8:11]) if version.startswith(b"RFB 003.") else 8
        if minor < 7:
            self.sock.sendall(struct.pack(">I", 1))  # 3.3: the server picks None
        else:
            self.sock.sendall(bytes([1, 1]))  # one security type: None
            _recv_exact(self.sock, 1)
            if minor >= 8:
                self.sock.sendall(struct.pack(">I", 0))  # SecurityResult OK
        _recv_exact(self.sock, 1)  # ClientInit (shared flag)
        name = self.screen.title.encode()
        self.sock.sendall(struct.pack(">HH", WIDTH, HEIGHT) + SERVER_PIXEL_FORMAT + struct.pack(">I", len(name)) + name)

    def serve(self) -> None:
        self.handshake()
        last_check = 0.0
        while True:
            now = time.monotonic()
            if now - last_check > 1:
                last_check = now
                if not self.running():
                    return
            ready, _, _ = select.select([self.sock], [], [], 0.5)
            if ready:
                self.message()
            if self.wants_update and self.dirty:
                self.send_frame()

    def message(self) -> None:
        kind = _recv_exact(self.sock, 1)[0]
        if kind not in self.MESSAGE_SIZES:
            raise ConnectionError(f"unknown RFB message {kind}")
        body = _recv_exact(self.sock, self.MESSAGE_SIZES[kind] - 1)
        if kind == 0:
            self.pixel_format, self.dirty = body[3:19], True
        elif kind == 2:
            _recv_exact(self.sock, 4 * struct.unpack(">H", body[1:3])[0])
        elif kind == 3:
            self.wants_update = True
            self.dirty = self.dirty or body[0] == 0
        elif kind == 4:
            self.key(bool(body[0]), struct.unpack(">I", body[3:7])[0])
        elif kind == 6:
            self.paste(_recv_exact(self.sock, struct.unpack(">I", body[3:7])[0]))

    def key(self, down: bool, keysym: int) -> None:
        if keysym in XK_CONTROL or keysym in XK_ALT:
            (self.modifiers.add if down else self.modifiers.discard)(keysym)
            return
        if not down:
            return
        ctrl = any(k in self.modifiers for k in XK_CONTROL)
        alt = any(k in self.modifiers for k in XK_ALT)
        if keysym == XK_DELETE and ctrl and alt:
            self.screen.ctrl_alt_del()
        elif keysym == XK_RETURN:
            self.screen.enter()
        elif keysym == XK_BACKSPACE:
            self.screen.backspace()
        elif 0x20 <= keysym <= 0x7E and not ctrl:
            self.screen.key(chr(keysym))
        else:
            return
        self.dirty = True

    def paste(self, text: bytes) -> None:
        for char in text.decode("latin-1"):
            if char == "\n":
                self.screen.enter()
            elif char.isprintable():
                self.screen.key(char)
        self.dirty = True

    def send_frame(self) -> None:
        pixels = encode_pixels(render(self.screen, self.font), self.pixel_format)
        header = struct.pack(">BxH", 0, 1) + struct.pack(">HHHHi", 0, 0, WIDTH, HEIGHT, 0)
        self.sock.sendall(header + pixels)
        self.wants_update = self.dirty = False


def serve_serial(sock: socket.socket, title: str, running: Callable[[], bool]) -> None:
    """The same dialogue as a text stream (what a serial port would carry)."""
    screen = Screen(title=title)
    sock.sendall(("\r\n".join(screen.lines) + "\r\n" + screen.prompt).encode())
    while running():
        ready, _, _ = select.select([sock], [], [], 1)
        if not ready:
            continue
        data = sock.recv(4096)
        if not data:
            return
        for char in data.decode("utf-8", "replace"):
            if char in "\r\n":
                reply = screen.enter()
                sock.sendall(("\r\n" + (reply + "\r\n" if reply else "") + screen.prompt).encode())
            elif char in "\x7f\b":
                if screen.typed:
                    screen.backspace()
                    sock.sendall(b"\b \b")
            elif char.isprintable():
                screen.key(char)
                sock.sendall(char.encode())


def serve(sock: socket.socket, protocol: str, title: str, running: Callable[[], bool]) -> None:
    """One console connection: the screen (RFB) or the serial dialogue."""
    if protocol == ConsoleProtocol.VNC:
        RFBSession(sock, title, running).serve()
    else:
        serve_serial(sock, title, running)
