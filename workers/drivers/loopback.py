"""Loopback TCP listeners in this process, one per key (a guest and protocol), for drivers
whose console is not a TCP port the console proxy could dial: the simulator draws its own
screen, libvirt's serial console is a stream on the libvirt connection. Each accepted
connection is handed to ``serve(sock)`` in its own thread, which closes it."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Hashable

logger = logging.getLogger(__name__)


class LoopbackServers:
    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self._ports: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def port_for(self, key: Hashable, serve: Callable[[socket.socket], None]) -> int:
        with self._lock:
            if key not in self._ports:
                listener = socket.create_server((self.host, 0))
                self._ports[key] = listener.getsockname()[1]
                threading.Thread(
                    target=self._accept, args=(listener, serve), name=f"console-{key}", daemon=True
                ).start()
            return self._ports[key]

    @staticmethod
    def _accept(listener: socket.socket, serve: Callable[[socket.socket], None]) -> None:
        while True:
            sock, _ = listener.accept()
            threading.Thread(target=LoopbackServers._serve, args=(sock, serve), daemon=True).start()

    @staticmethod
    def _serve(sock: socket.socket, serve: Callable[[socket.socket], None]) -> None:
        try:
            serve(sock)
        except (ConnectionError, OSError) as exc:
            logger.debug("console connection ended: %s", exc)
        finally:
            sock.close()


SERVERS = LoopbackServers()
