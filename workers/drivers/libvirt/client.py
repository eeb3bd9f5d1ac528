"""A thin wrapper around one libvirt connection: opening, reopening, typed errors.

libvirt prints every error to stderr unless an error handler is registered;
importing this module registers one that logs through Python logging (DEBUG:
the same error is raised as ``libvirtError`` and translated by ``errors()``, so
callers decide whether it matters).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Iterator

import libvirt

from ..base import DriverError, PermanentDriverError, TransientDriverError

logger = logging.getLogger(__name__)


def _log_libvirt_error(_context, error) -> None:
    # error: (code, domain, message, level, str1, str2, str3, int1, int2)
    code, domain, message, level = error[:4]
    logger.debug("libvirt error %s (domain %s, level %s): %s", code, domain, level, message)


libvirt.registerErrorHandler(_log_libvirt_error, None)

# Worth retrying: the connection or the daemon is in trouble, or something holds a lock.
TRANSIENT_CODES = {
    libvirt.VIR_ERR_INVALID_CONN: "connection_lost",
    libvirt.VIR_ERR_RPC: "connection_lost",
    libvirt.VIR_ERR_OPERATION_TIMEOUT: "timeout",  # also "cannot acquire state change lock"
    libvirt.VIR_ERR_AGENT_UNRESPONSIVE: "timeout",
    libvirt.VIR_ERR_RESOURCE_BUSY: "locked",
}
# Errors raised by the client's transport (socket refused, ssh, TLS, connection reset),
# whatever their code: the daemon or the host is unreachable for now.
TRANSPORT_DOMAINS = {libvirt.VIR_FROM_RPC, libvirt.VIR_FROM_REMOTE}
# Transport errors that are our configuration, not an outage: a misspelt URI transport
# ("qemu+sssh://", libvirt's VIR_ERR_INVALID_ARG), TLS files missing or unusable.
MISCONFIGURED_TRANSPORT = re.compile(
    r"transport in URL not recognised|Cannot read (CA certificate|certificate|private key|CA revocation list) '"
    r"|Unable to (set x509 CA certificate|import CA certificate)|certificate \S+ (has expired|is not yet active)"
    r"|Unable to verify server certificate",
    re.IGNORECASE,
)
PERMANENT_CODES = {
    libvirt.VIR_ERR_XML_ERROR: "invalid_xml",
    libvirt.VIR_ERR_XML_DETAIL: "invalid_xml",
    libvirt.VIR_ERR_NO_STORAGE_VOL: "no_image",
    libvirt.VIR_ERR_NO_STORAGE_POOL: "no_pool",
    libvirt.VIR_ERR_NO_NETWORK: "no_network",
    libvirt.VIR_ERR_CONFIG_UNSUPPORTED: "unsupported",
    libvirt.VIR_ERR_AUTH_FAILED: "auth_failed",
    libvirt.VIR_ERR_NO_DOMAIN: "not_found",
    libvirt.VIR_ERR_NO_CONNECT: "no_driver",  # "no connection driver available for <uri>": a bad URI
}


def translate(exc: libvirt.libvirtError, doing: str) -> DriverError:
    """A libvirt error as the engine's transient (retry) or permanent (fail now) error."""
    code, domain = exc.get_error_code(), exc.get_error_domain()
    message = f"Could not {doing}: {exc.get_error_message() or exc}"
    if domain in TRANSPORT_DOMAINS and (
        code == libvirt.VIR_ERR_INVALID_ARG or MISCONFIGURED_TRANSPORT.search(exc.get_error_message() or "")
    ):
        return PermanentDriverError(f"{message} (check the hypervisor's uri and TLS files)", code="misconfigured")
    if code in TRANSIENT_CODES:
        return TransientDriverError(message, code=TRANSIENT_CODES[code])
    if code == libvirt.VIR_ERR_OPERATION_FAILED and "lock" in (exc.get_error_message() or "").lower():
        return TransientDriverError(message, code="locked")
    if domain in TRANSPORT_DOMAINS and code != libvirt.VIR_ERR_AUTH_FAILED:
        return TransientDriverError(message, code="connection_lost")
    return PermanentDriverError(message, code=PERMANENT_CODES.get(code, f"libvirt_{code}"))


def code_of(exc: libvirt.libvirtError) -> int:
    return exc.get_error_code()


class LibvirtClient:
    """One connection per driver instance, opened on first use and reopened after a
    transport error or a fork (a libvirt connection must not cross ``fork``)."""

    def __init__(self, uri: str, credentials: dict | None = None, *, label: str = ""):
        self.uri = uri
        self.label = label or uri
        self.credentials = dict(credentials or {})
        self._conn: libvirt.virConnect | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def _open(self) -> libvirt.virConnect:
        username, password = self.credentials.get("username"), self.credentials.get("password")
        if not (username or password):
            return libvirt.open(self.uri)

        def answer(credentials, _data):
            for credential in credentials:
                if credential[0] == libvirt.VIR_CRED_AUTHNAME:
                    credential[4] = username or ""
                elif credential[0] == libvirt.VIR_CRED_PASSPHRASE:
                    credential[4] = password or ""
            return 0

        auth = [[libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE], answer, None]
        return libvirt.openAuth(self.uri, auth, 0)

    def connection(self) -> libvirt.virConnect:
        with self._lock:
            if self._conn is not None and self._pid != os.getpid():
                self._conn = None  # inherited through fork: never use (nor close) the parent's socket
            if self._conn is not None:
                try:
                    alive = self._conn.isAlive()
                except libvirt.libvirtError:
                    alive = False
                if not alive:
                    self._drop()
            if self._conn is None:
                try:
                    self._conn = self._open()
                except libvirt.libvirtError as exc:
                    raise translate(exc, f"connect to {self.uri}") from exc
                self._pid = os.getpid()
            return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(libvirt.libvirtError):
                conn.close()

    def close(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                self._drop()
            self._conn = None

    @contextlib.contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Translate libvirt errors raised inside; a transport error also drops the connection."""
        try:
            yield
        except libvirt.libvirtError as exc:
            error = translate(exc, f"{doing} on {self.label}")
            if error.code == "connection_lost":
                with self._lock:
                    self._drop()
            raise error from exc
