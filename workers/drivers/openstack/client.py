"""Connections to one OpenStack cloud, and its errors as typed driver errors.

``OpenStackClient`` holds one ``openstack.connection.Connection`` per hypervisor
configuration (the driver instance is cached per worker process, see
``get_driver``), made lazily: authenticating is a network call. Servers of a
provisioned project are built in that project, so ``for_project(id)`` adds one
project-scoped connection per OpenStack project, also kept for the process's life.

Everything that talks to the cloud runs inside ``translate()``, which turns
openstacksdk and keystoneauth exceptions into ``TransientDriverError`` (worth
retrying: unreachable, timeouts, 5xx, 409 on a busy server, rate limits) or
``PermanentDriverError`` (credentials, privileges, quota exceeded, 400s, TLS,
a service missing from the catalog). ``code`` says which (see ``Code``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections.abc import Iterator

import openstack
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from openstack import exceptions as os_exc

from ..base import DriverError, PermanentDriverError, TransientDriverError
from .settings import OpenStackSettings

logger = logging.getLogger(__name__)

APP_NAME = "controlplane"


class Code:
    """``DriverError.code`` values the client produces."""

    UNREACHABLE = "unreachable"  # connection refused / reset / DNS: transient
    TIMEOUT = "timeout"  # connect or read timeout, 408: transient
    SERVER_ERROR = "openstack_error"  # 5xx: transient
    RATE_LIMITED = "rate_limited"  # 429: transient
    BUSY = "busy"  # 409: the resource is in a task (building, powering off...): transient
    AUTH = "auth"  # 401, wrong credentials: permanent
    FORBIDDEN = "forbidden"  # 403 without "quota": a role is missing: permanent
    QUOTA = "quota_exceeded"  # OpenStack quota exceeded (403/413 from nova, 409 from neutron): permanent
    INVALID = "invalid"  # 400 and other 4xx: bad image, network, flavor: permanent
    NOT_FOUND = "not_found"  # 404
    TLS = "tls"  # certificate verification failed: permanent (fix cacert)
    NO_SERVICE = "no_service"  # the catalog has no such service/endpoint: permanent
    MISCONFIGURED = "misconfigured"  # our own settings are wrong: permanent
    FAULT = "server_fault"  # a server went to ERROR (nova's fault message)
    NO_FLAVOR = "no_flavor"  # no flavor matches the plan


QUOTA_PATTERN = re.compile(r"quota exceeded|exceeded quota|over ?quota|quota.*exceed", re.IGNORECASE)


def _details(exc: os_exc.HttpException) -> str:
    """The service's own message: ``{"forbidden": {"message": ...}}`` even when the answer's
    content type did not say JSON (openstacksdk then hands over the raw body)."""
    details = str(exc.details or "").strip()
    if details.startswith("{"):
        with contextlib.suppress(ValueError, AttributeError):
            body = json.loads(details)
            messages = [str(v["message"]) for v in body.values() if isinstance(v, dict) and v.get("message")]
            details = "\n".join(messages) or details
    return details or str(exc.message or exc).strip()


def _http_error(status: int, message: str, where: str) -> DriverError:
    if status == 401:
        return PermanentDriverError(f"OpenStack refused the credentials ({where}): {message}", code=Code.AUTH)
    if 400 <= status < 500 and QUOTA_PATTERN.search(message):
        return PermanentDriverError(f"OpenStack quota exceeded: {message}", code=Code.QUOTA)
    if status == 403:
        return PermanentDriverError(f"OpenStack refused {where}: {message} (a role is missing)", code=Code.FORBIDDEN)
    if status == 404:
        return PermanentDriverError(f"Not found on OpenStack ({where}): {message}", code=Code.NOT_FOUND)
    if status == 409:
        return TransientDriverError(f"OpenStack is busy ({where}): {message}", code=Code.BUSY)
    if status == 429:
        return TransientDriverError(f"OpenStack asked us to slow down ({where}): {message}", code=Code.RATE_LIMITED)
    if status == 408:
        return TransientDriverError(f"OpenStack timed out ({where}): {message}", code=Code.TIMEOUT)
    if 400 <= status < 500:
        return PermanentDriverError(f"OpenStack rejected {where}: {message}", code=Code.INVALID)
    return TransientDriverError(f"OpenStack failed ({where}, HTTP {status}): {message}", code=Code.SERVER_ERROR)


def driver_error(exc: Exception, where: str) -> DriverError:
    """The typed driver error for an exception raised by openstacksdk or keystoneauth."""
    if isinstance(exc, DriverError):
        return exc
    if isinstance(exc, os_exc.HttpException) and exc.status_code:
        return _http_error(int(exc.status_code), _details(exc), where)
    if isinstance(exc, ks_exc.HttpError) and exc.http_status:
        return _http_error(int(exc.http_status), str(exc.message or exc), where)
    if isinstance(exc, ks_exc.SSLError):
        return PermanentDriverError(
            f"TLS verification failed ({where}): {exc}; set cacert to the CA that signed the cloud's certificates.",
            code=Code.TLS,
        )
    if isinstance(exc, ks_exc.ConnectTimeout):
        return TransientDriverError(f"OpenStack did not answer in time ({where}).", code=Code.TIMEOUT)
    if isinstance(exc, ks_exc.ConnectionError):
        return TransientDriverError(f"Cannot reach OpenStack ({where}): {exc}", code=Code.UNREACHABLE)
    if isinstance(exc, (ks_exc.EndpointNotFound, os_exc.EndpointNotFound, os_exc.ServiceDisabledException)):
        return PermanentDriverError(
            f"OpenStack has no endpoint for {where} in its catalog ({exc}); set <service>_endpoint_override.",
            code=Code.NO_SERVICE,
        )
    if isinstance(exc, (ks_exc.DiscoveryFailure, os_exc.ServiceDiscoveryException)):
        return TransientDriverError(f"OpenStack version discovery failed ({where}): {exc}", code=Code.UNREACHABLE)
    if isinstance(exc, (ks_exc.AuthPluginException, ks_exc.AuthorizationFailure, os_exc.ConfigException)):
        return PermanentDriverError(f"OpenStack login is misconfigured ({where}): {exc}", code=Code.MISCONFIGURED)
    return TransientDriverError(f"OpenStack call failed ({where}): {exc.__class__.__name__}: {exc}")


@contextlib.contextmanager
def translate(where: str) -> Iterator[None]:
    """Run a block of openstacksdk calls; re-raise what fails as a typed driver error."""
    try:
        yield
    except DriverError:
        raise
    except Exception as exc:
        raise driver_error(exc, where) from exc


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, DriverError) and exc.code == Code.NOT_FOUND


class OpenStackClient:
    """The connections of one hypervisor configuration."""

    def __init__(self, name: str, settings: OpenStackSettings):
        self.name = name
        self.settings = settings
        self._lock = threading.Lock()
        self._conn: openstack.connection.Connection | None = None
        self._scoped: dict[str, openstack.connection.Connection] = {}

    @property
    def conn(self) -> openstack.connection.Connection:
        """The connection as configured (the login's own project): listings, lookups, actions, admin calls."""
        with self._lock:
            if self._conn is None:
                self._conn = self._connect(None)
            return self._conn

    def for_project(self, project_id: str | None) -> openstack.connection.Connection:
        """A connection scoped to ``project_id`` (servers are built in their tenant's project)."""
        if not project_id or project_id == self.own_project_id():
            return self.conn
        with self._lock:
            conn = self._scoped.get(project_id)
            if conn is None:
                conn = self._scoped[project_id] = self._connect(project_id)
            return conn

    def has(self, service_type: str) -> bool:
        """Without a catalog (auth_type none) only services with an endpoint override exist."""
        return not self.settings.noauth or f"{service_type}_endpoint_override" in self.settings.cloud

    def require(self, service_type: str) -> None:
        if not self.has(service_type):
            raise PermanentDriverError(
                f"{self.name}: OpenStack has no {service_type} endpoint: auth_type none has no catalog; "
                f"set {service_type}_endpoint_override, or network_id for a shared network.",
                code=Code.NO_SERVICE,
            )

    def own_project_id(self) -> str | None:
        if self.settings.noauth:
            return self.settings.noauth_project
        with translate("the login"):
            return self.conn.current_project_id

    def own_user_id(self) -> str:
        if self.settings.noauth:
            return self.settings.noauth_user
        with translate("the login"):
            return self.conn.current_user_id

    def _connect(self, project_id: str | None) -> openstack.connection.Connection:
        settings = self.settings
        cloud = dict(settings.cloud)
        if not cloud.get("verify", True) and not cloud.get("cacert"):
            logger.warning("%s: TLS verification is OFF (verify: false); set cacert instead", self.name)
        if settings.noauth:
            # nova's noauth2: the token is "user:project"; no catalog, only endpoint overrides.
            project = project_id or settings.noauth_project
            session = ks_session.Session(
                auth=token_endpoint.Token(None, f"{settings.noauth_user}:{project}"),
                verify=cloud.pop("cacert", None) or cloud.pop("verify", True),
                timeout=cloud.pop("api_timeout", None),
                app_name=APP_NAME,
            )
            return openstack.connection.Connection(session=session, app_name=APP_NAME, **cloud)
        auth = dict(settings.auth)
        if project_id:
            for key in ("project_name", "project_domain_name", "project_domain_id", "domain_id", "domain_name"):
                auth.pop(key, None)
            auth["project_id"] = project_id
        with translate("connecting"):
            return openstack.connection.Connection(app_name=APP_NAME, auth_type=settings.auth_type, auth=auth, **cloud)

    def close(self) -> None:
        with self._lock:
            for conn in [self._conn, *self._scoped.values()]:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
            self._conn, self._scoped = None, {}
