"""A thin wrapper over ``proxmoxer`` that speaks in typed driver errors.

One ``ProxmoxClient`` per hypervisor configuration. It connects lazily (a
password login is a network call), verifies TLS by default (an optional CA
bundle path, never a silent ``verify=False``), and turns every failure into a
``TransientDriverError`` (worth retrying: unreachable, timeouts, 5xx, config
lock timeouts, lost quorum) or a ``PermanentDriverError`` (bad credentials,
missing privileges, 4xx validation errors with Proxmox's per-parameter
messages). ``code`` tells the driver which case it is (see ``Code``).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import requests
from proxmoxer import AuthenticationError, ProxmoxAPI, ResourceException

from ..base import DriverError, PermanentDriverError, TransientDriverError

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8006
DEFAULT_TIMEOUT = 20


class Code:
    """``DriverError.code`` values the client produces."""

    UNREACHABLE = "unreachable"  # connection refused / reset / DNS: transient
    TIMEOUT = "timeout"  # HTTP timeout, or Proxmox's own "got timeout": transient
    LOCK_TIMEOUT = "lock_timeout"  # "can't lock file ... got timeout": another task holds the config lock
    LOCKED = "locked"  # the guest carries a lock (backup, migrate, clone...): transient
    NO_QUORUM = "no_quorum"  # the cluster lost quorum, /etc/pve is read-only: transient
    SERVER_ERROR = "proxmox_error"  # any other 5xx: transient
    TLS = "tls"  # certificate verification failed: permanent (fix ca_bundle)
    AUTH = "auth"  # wrong token or password: permanent
    FORBIDDEN = "forbidden"  # the token lacks a privilege: permanent
    INVALID = "invalid"  # 4xx parameter verification: permanent
    NOT_FOUND = "not_found"  # the guest's config file does not exist
    VMID_TAKEN = "vmid_taken"  # another client took the VMID first
    NOT_RUNNING = "not_running"  # the action needs a running guest
    ALREADY_RUNNING = "already_running"  # start of a running guest
    MISCONFIGURED = "misconfigured"  # our own settings are wrong: permanent
    TASK_FAILED = "task_failed"  # a task ended with an error we have no better name for
    SNAPSHOT_EXISTS = "snapshot_exists"  # "snapshot name 'x' already used"
    SNAPSHOT_MISSING = "snapshot_missing"  # "snapshot 'x' does not exist"


# HTTP 500 answers that mean "this request can never work" (PVE's own wording).
INVALID_CONFIGURATION = (
    r"linked clone feature is not supported|not allowed for linked clones",
    r"can't clone|cannot clone|can't start a vm if it's a template|is a template|not a template",
    r"storage '[^']*' (does not exist|is disabled|is not available on node|does not (support|allow))",
    r"bridge '[^']*' does not exist|pool '[^']*' does not exist",
    r"no such (cluster )?node|hostname lookup '[^']*' failed",
    r"unable to parse|parameter '[^']*' not allowed|only root can",
)

# Proxmox's wording, first match wins; (pattern, code, transient).
MESSAGE_RULES: tuple[tuple[re.Pattern, str, bool], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), code, transient)
    for pattern, code, transient in (
        (r"can't lock file .*got timeout", Code.LOCK_TIMEOUT, True),
        (r"snapshot name '.*' already used", Code.SNAPSHOT_EXISTS, False),
        (r"snapshot '.*' does not exist", Code.SNAPSHOT_MISSING, False),
        (r"no quorum|cluster not ready", Code.NO_QUORUM, True),
        (r"already exists", Code.VMID_TAKEN, False),
        (r"configuration file .* does not exist|unable to find configuration file", Code.NOT_FOUND, False),
        (r"\bnot running\b", Code.NOT_RUNNING, False),
        (r"already running", Code.ALREADY_RUNNING, False),
        (r"\bis locked\b", Code.LOCKED, True),
        (r"got timeout|timed out|timeout", Code.TIMEOUT, True),
        (r"no route to host|connection refused|connection reset|temporarily unavailable", Code.UNREACHABLE, True),
        # Validation Proxmox does with `die` in the API handler (HTTP 500, not 400): our settings or
        # the image are wrong, and asking again gives the same answer.
        *((pattern, Code.INVALID, False) for pattern in INVALID_CONFIGURATION),
    )
)


def classify(message: str, status: int | None = None) -> tuple[str, bool]:
    """(code, transient) for a Proxmox error message (HTTP status when it came from a request).

    Task exit statuses have no HTTP status: an unknown one is permanent (the
    task ran and failed), an unknown 5xx answer is transient (the API did not).
    """
    for pattern, code, transient in MESSAGE_RULES:
        if pattern.search(message):
            return code, transient
    if status is None:
        return Code.TASK_FAILED, False
    return Code.SERVER_ERROR, status >= 500


def error_for(message: str, *, status: int | None = None, code: str | None = None) -> DriverError:
    found, transient = classify(message, status)
    cls = TransientDriverError if transient else PermanentDriverError
    return cls(message, code=code or found)


def _resource_error(exc: ResourceException) -> DriverError:
    status = int(exc.status_code)
    message = str(exc.content or exc.status_message or "").strip()
    errors = exc.errors if isinstance(exc.errors, dict) else None
    if status == 401:
        return PermanentDriverError(f"Proxmox refused the credentials: {message}", code=Code.AUTH)
    if status == 403:
        return PermanentDriverError(f"The Proxmox API token lacks a privilege: {message}", code=Code.FORBIDDEN)
    if 400 <= status < 500 and status not in (408, 429):
        if errors:
            details = "; ".join(f"{name}: {str(text).strip()}" for name, text in sorted(errors.items()))
            message = f"{message.rstrip('.')}: {details}"
        if classify(message)[0] == Code.VMID_TAKEN:  # nextid?vmid=N answers 400 when N is taken
            return PermanentDriverError(message, code=Code.VMID_TAKEN)
        return PermanentDriverError(f"Proxmox rejected the request: {message}", code=Code.INVALID)
    if status in (408, 429):
        return TransientDriverError(f"Proxmox asked us to slow down ({status}): {message}", code=Code.TIMEOUT)
    return error_for(message or f"HTTP {status}", status=status)


class ProxmoxClient:
    """``get`` / ``post`` / ``put`` / ``delete`` on API paths ("nodes/pve1/qemu"), returning ``data``."""

    def __init__(self, settings: dict[str, Any], credentials: dict[str, Any], *, name: str = "proxmox"):
        self.name = name
        self.host = str(settings.get("host") or "").strip()
        if not self.host:
            raise PermanentDriverError(f"{name}: settings.host is required.", code=Code.MISCONFIGURED)
        self.port = int(settings.get("port") or DEFAULT_PORT)
        self.timeout = float(settings.get("timeout") or DEFAULT_TIMEOUT)
        self.verify = self._verify(settings)
        self._auth = self._auth_kwargs(credentials)
        self._api: ProxmoxAPI | None = None

    def _verify(self, settings: dict[str, Any]) -> bool | str:
        ca_bundle = settings.get("ca_bundle")
        verify_ssl = settings.get("verify_ssl", True)
        if isinstance(verify_ssl, str):
            verify_ssl = verify_ssl.strip().lower() not in ("0", "false", "no", "off")
        if ca_bundle:
            return str(ca_bundle)
        if not verify_ssl:
            logger.warning("%s: TLS verification is OFF (settings.verify_ssl=false); set ca_bundle instead", self.name)
        return bool(verify_ssl)

    def _auth_kwargs(self, credentials: dict[str, Any]) -> dict[str, Any]:
        token_id, secret = credentials.get("token_id"), credentials.get("token_secret")
        if token_id and secret:
            user, sep, token_name = str(token_id).partition("!")
            if not sep or not user or not token_name:
                raise PermanentDriverError(
                    f"{self.name}: credentials.token_id must look like user@realm!tokenid.", code=Code.MISCONFIGURED
                )
            return {"user": user, "token_name": token_name, "token_value": str(secret)}
        if credentials.get("user") and credentials.get("password"):
            return {"user": str(credentials["user"]), "password": str(credentials["password"])}
        raise PermanentDriverError(
            f"{self.name}: credentials need token_id + token_secret, or user + password.", code=Code.MISCONFIGURED
        )

    @property
    def tls_verified(self) -> bool:
        return self.verify is not False

    @property
    def api(self) -> ProxmoxAPI:
        if self._api is None:
            self._api = self._guard(
                lambda: ProxmoxAPI(
                    self.host, port=self.port, verify_ssl=self.verify, timeout=self.timeout, **self._auth
                )
            )
        return self._api

    def _guard(self, call):
        where = f"{self.host}:{self.port}"
        try:
            return call()
        except ResourceException as exc:
            raise _resource_error(exc) from exc
        except AuthenticationError as exc:
            self._api = None
            raise PermanentDriverError(f"Proxmox at {where} refused the login: {exc}", code=Code.AUTH) from exc
        except requests.exceptions.SSLError as exc:
            self._api = None
            raise PermanentDriverError(
                f"TLS verification of Proxmox at {where} failed ({exc.__class__.__name__}); "
                "set settings.ca_bundle to the CA that signed its certificate.",
                code=Code.TLS,
            ) from exc
        except requests.exceptions.Timeout as exc:
            raise TransientDriverError(
                f"Proxmox at {where} did not answer within {self.timeout:g}s.", code=Code.TIMEOUT
            ) from exc
        except requests.exceptions.RequestException as exc:
            self._api = None
            raise TransientDriverError(f"Cannot reach Proxmox at {where}: {exc}", code=Code.UNREACHABLE) from exc

    def _call(self, method: str, path: str, params: dict[str, Any]) -> Any:
        params = {key: value for key, value in params.items() if value is not None}
        resource = self.api(path)
        return self._guard(lambda: getattr(resource, method)(**params))

    def get(self, path: str, **params) -> Any:
        return self._call("get", path, params)

    def post(self, path: str, **params) -> Any:
        return self._call("post", path, params)

    def put(self, path: str, **params) -> Any:
        return self._call("put", path, params)

    def delete(self, path: str, **params) -> Any:
        return self._call("delete", path, params)

    def close(self) -> None:
        if self._api is not None:
            session = self._api._store.get("session")
            if session is not None:
                session.close()
            self._api = None
