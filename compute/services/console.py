"""Browser consoles: one-time tokens and the sessions they open.

The web (portal page or API) issues a token with ``console_session_open``: 256 random
bits, only their SHA-256 stored, valid ``CONSOLE_TOKEN_TTL_SECONDS`` (at most 60), bound
to the user, the VM, the client's address and the origin of the page that will connect.

The console proxy (workers/console/) hands the token it was given to
``console_session_consume``. A guarded UPDATE sets ``consumed_at`` only while the token
is unused and unexpired, so of two connections presenting it exactly one wins; every
presentation uses the token up, even one refused afterwards. The winner's bindings and
the user's right to the VM are then checked again (a role can be lost within the
minute). Only then does the proxy ask the hypervisor for the console: a refused
connection never reaches it. ``console_session_close`` records the end and its duration.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

import audit
from accounts.choices import Role
from accounts.hashing import sha256
from accounts.selectors import project_require_role
from audit.choices import Action as AuditAction
from audit.request_meta import client_ip
from compute.choices import ConsoleProtocol, VMStatus
from compute.models import ConsoleSession, VirtualMachine
from controlplane.errors import Conflict, Forbidden, InvalidInput, ServiceError

MAX_TOKEN_LENGTH = 128


def console_access_check(*, user, vm: VirtualMachine) -> None:
    """Operators open any VM's console; others need the member role in the VM's project
    (viewer when ``CONSOLE_ALLOW_VIEWERS``) and the project's 2FA rule satisfied."""
    if not user.is_active:
        raise Forbidden("This account is deactivated.")
    if user.is_staff:
        return
    role = Role.VIEWER if settings.CONSOLE_ALLOW_VIEWERS else Role.MEMBER
    project_require_role(user=user, project=vm.project, role=role)


def _console_ready_check(vm: VirtualMachine) -> None:
    if vm.status != VMStatus.ACTIVE or not vm.backend_id:
        raise Conflict(
            f"{vm.name} is {vm.get_status_display().lower()}: its console is available while it is active.",
            code="vm_not_active",
        )


@transaction.atomic
def console_session_open(*, vm: VirtualMachine, user, request, origin: str, protocol: str = ConsoleProtocol.VNC):
    """Issue a one-time console token for ``vm``; return ``(session, raw_token)``.

    ``origin``: the scheme://host[:port] of the page that will open the WebSocket.
    The raw token is shown once and never stored.
    """
    if protocol not in ConsoleProtocol.values:
        raise InvalidInput(f"Unknown console protocol {protocol!r}; use vnc or serial.", fields={"protocol": "invalid"})
    console_access_check(user=user, vm=vm)
    _console_ready_check(vm)
    token = secrets.token_urlsafe(32)
    session = ConsoleSession.objects.create(
        vm=vm,
        user=user,
        token_hash=sha256(token),
        protocol=protocol,
        client_ip=client_ip(request) or None,
        origin=origin,
        expires_at=timezone.now() + timedelta(seconds=settings.CONSOLE_TOKEN_TTL_SECONDS),
    )
    return session, token


def _binding_problem(session: ConsoleSession, *, ip: str, origin: str) -> str:
    """Why this connection may not use the session ("" when it may)."""
    if origin != session.origin:
        return "The console was opened from another site (Origin mismatch)."
    if settings.CONSOLE_BIND_CLIENT_IP and session.client_ip and ip != session.client_ip:
        return "The console link was issued to another address."
    try:
        console_access_check(user=session.user, vm=session.vm)
        _console_ready_check(session.vm)
    except ServiceError as exc:
        return exc.message
    return ""


def console_session_consume(*, token: str, request, origin: str) -> ConsoleSession:
    """Use up a console token for the connection described by ``request`` (an object
    with ``META``: REMOTE_ADDR, X-Forwarded-For) coming from page ``origin``.

    Returns the session (VM, hypervisor and user loaded) or raises ``Forbidden``. The
    caller then asks the hypervisor and calls ``console_session_start`` or
    ``console_session_refuse``.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise Forbidden("No console token: open the console from the VM's page.", code="console_token_missing")
    now = timezone.now()
    token_hash = sha256(token)
    with transaction.atomic():
        won = ConsoleSession.objects.filter(token_hash=token_hash, consumed_at__isnull=True, expires_at__gt=now).update(
            consumed_at=now
        )
    if not won:
        raise Forbidden(
            "This console link is not valid any more (used, expired or unknown): open the console again.",
            code="console_token_invalid",
        )
    session = ConsoleSession.objects.select_related("vm__hypervisor", "vm__project", "vm__plan", "user").get(
        token_hash=token_hash
    )
    problem = _binding_problem(session, ip=client_ip(request), origin=origin)
    if problem:
        console_session_refuse(session=session, reason=problem)
        raise Forbidden(problem, code="console_refused")
    return session


def console_session_refuse(*, session: ConsoleSession, reason: str) -> None:
    """A consumed token that opened nothing (bindings, rights, or the hypervisor said no)."""
    ConsoleSession.objects.filter(pk=session.pk, closed_at__isnull=True).update(
        closed_at=timezone.now(), outcome=f"refused: {reason}"[:200]
    )


@transaction.atomic
def console_session_start(*, session: ConsoleSession, request) -> None:
    """The proxy reached the console: record ``console.opened`` (who, VM, client address)."""
    audit.record(
        actor=session.user,
        action=AuditAction.CONSOLE_OPENED,
        target=session.vm,
        details={"session": session.pk, "protocol": session.protocol, "ip": client_ip(request)},
        request=request,
    )


@transaction.atomic
def console_session_close(*, session: ConsoleSession, outcome: str, request=None) -> bool:
    """Record the end of an opened session (``console.closed`` with its duration) once."""
    now = timezone.now()
    closed = ConsoleSession.objects.filter(pk=session.pk, consumed_at__isnull=False, closed_at__isnull=True).update(
        closed_at=now, outcome=outcome[:200]
    )
    if closed:
        audit.record(
            actor=session.user,
            action=AuditAction.CONSOLE_CLOSED,
            target=session.vm,
            details={
                "session": session.pk,
                "seconds": round((now - session.consumed_at).total_seconds(), 1),
                "outcome": outcome[:200],
            },
            request=request,
        )
    return bool(closed)
