"""Who is on the other end of a request: client address, user agent, request id.

``X-Forwarded-For`` and an incoming ``X-Request-ID`` are believed only when the
connection comes from a proxy listed in ``AUDIT_TRUSTED_PROXIES`` (CIDRs;
loopback by default when ``TRUSTED_PROXY_COUNT`` declares a proxy in front);
anyone else could write anything in them. This is the one trust rule for the
request id: ``audit.middleware.RequestIDMiddleware`` applies it, and logs,
audit events and the response carry what it decided.
"""

import contextvars
import ipaddress
import re
import uuid
from contextlib import contextmanager
from functools import lru_cache

from django.conf import settings

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:@-]{1,64}$")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in proxies)


def trusted_networks() -> tuple:
    return _networks(tuple(settings.AUDIT_TRUSTED_PROXIES))


def _parse(value: str):
    try:
        address = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    # ::ffff:a.b.c.d is an IPv4 client behind a dual-stack socket.
    return getattr(address, "ipv4_mapped", None) or address


def _trusted(address) -> bool:
    return any(address in network for network in trusted_networks())


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, or the nearest untrusted hop of X-Forwarded-For.

    The list is read right to left (each proxy appends the address it saw) and
    trusted proxies are skipped; the first address not in the trusted list is
    the client. A malformed entry stops the walk at the last good hop.
    """
    remote = _parse(request.META.get("REMOTE_ADDR", ""))
    if remote is None:
        return ""
    if not _trusted(remote):
        return str(remote)
    client = remote
    for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        address = _parse(hop)
        if address is None:
            break
        client = address
        if not _trusted(address):
            break
    return str(client)


def from_trusted_proxy(request) -> bool:
    remote = _parse(request.META.get("REMOTE_ADDR", ""))
    return remote is not None and _trusted(remote)


def user_agent(request) -> str:
    return _CONTROL_CHARS.sub("", request.META.get("HTTP_USER_AGENT", ""))[:300]


def new_request_id() -> str:
    return uuid.uuid4().hex


def incoming_request_id(request) -> str | None:
    """The proxy's X-Request-ID, when a trusted proxy sent a well-formed one
    (at most 64 characters, the width of ``AuditEvent.request_id``)."""
    value = request.META.get("HTTP_X_REQUEST_ID", "")
    if value and _REQUEST_ID_RE.match(value) and from_trusted_proxy(request):
        return value
    return None


_current_request = contextvars.ContextVar("audit_current_request", default=None)


@contextmanager
def bind_request(request):
    """Make ``request`` the one ``audit.record`` falls back to while it is handled."""
    token = _current_request.set(request)
    try:
        yield
    finally:
        _current_request.reset(token)


def current_request():
    """The web request being handled in this context (RequestIDMiddleware), or None."""
    return _current_request.get()
