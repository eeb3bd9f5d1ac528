"""PostgreSQL timeouts per role of connection (docs/OPERATIONS.md "Database timeouts").

Each role — ``web`` (requests), ``engine`` (operation tasks), ``housekeeping`` (relay,
reaper, reconciliation) and ``billing`` (charging, invoicing) — has its own
``lock_timeout``, ``statement_timeout`` and ``idle_in_transaction_session_timeout``
(``settings.DB_TIMEOUTS``, milliseconds, from env). Requests take the web role in
``DatabaseRoleMiddleware``; Celery tasks take theirs before they run
(controlplane/celery.py); anything else (migrations, shell, management commands) keeps
the server's defaults. A role is applied with ``SET`` on the thread's connection, now if
it is open and when it is (re)opened.

A request whose row lock cannot be had within the web ``lock_timeout`` answers 503
with ``Retry-After`` (``busy_response``) instead of hanging behind a frozen process, and
a request that finds the database gone (restart, crash, failover: connection refused or
closed) answers 503 with ``Retry-After`` too (``unavailable_response``), never a 500.
"""

from __future__ import annotations

import threading

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.db.backends.signals import connection_created
from django.dispatch import receiver
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render

WEB, ENGINE, HOUSEKEEPING, BILLING = "web", "engine", "housekeeping", "billing"

# Task name -> role; every other task is an engine task.
TASK_ROLES = {
    "relay_pending_operations": HOUSEKEEPING,
    "reap_expired_operations": HOUSEKEEPING,
    "reconcile_hypervisors": HOUSEKEEPING,
    "relay_reverse_dns": HOUSEKEEPING,
    "apply_reverse_dns": HOUSEKEEPING,
    "charge_usage": BILLING,
    "issue_monthly_invoices": BILLING,
}

# SQLSTATE of "could not obtain lock" (lock_timeout, NOWAIT) and "canceling statement" (statement_timeout).
LOCK_NOT_AVAILABLE, QUERY_CANCELED = "55P03", "57014"
BUSY_RETRY_AFTER_SECONDS = 5
BUSY_MESSAGE = "This resource is busy: another process holds it. Nothing was changed; try again in a few seconds."
# SQLSTATEs of "the database is not there": class 08 (connection exception), and the server
# shutting down, crashed or still starting (admin_shutdown, crash_shutdown, cannot_connect_now).
UNAVAILABLE_SQLSTATE_CLASS, UNAVAILABLE_SQLSTATES = "08", ("57P01", "57P02", "57P03")
UNAVAILABLE_RETRY_AFTER_SECONDS = 5
UNAVAILABLE_MESSAGE = (
    "The database is unavailable for a moment (restarting or failing over). Your request was not carried out"
    " unless it shows up when you look again; try again in a few seconds."
)
UNAVAILABLE_HTML = (
    "<!doctype html><title>Unavailable · Control Plane</title><h1>Unavailable, try again</h1><p>{message}</p>"
)

_state = threading.local()


def role_for_task(name: str) -> str:
    return TASK_ROLES.get(name, ENGINE)


def _apply(conn, role: str | None) -> None:
    if role is None or conn.vendor != "postgresql":
        return
    timeouts = settings.DB_TIMEOUTS[role]
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false),"
            " set_config('idle_in_transaction_session_timeout', %s, false)",
            [
                f"{timeouts['lock_timeout']}ms",
                f"{timeouts['statement_timeout']}ms",
                f"{timeouts['idle_in_transaction_session_timeout']}ms",
            ],
        )
    conn.controlplane_role = role


def use_role(role: str) -> None:
    """From now on this thread's connection runs with ``role``'s timeouts."""
    _state.role = role
    if connection.connection is not None and getattr(connection, "controlplane_role", None) != role:
        if connection.in_atomic_block:
            return  # applied when the connection is next opened; never SET inside someone's transaction
        _apply(connection, role)


@receiver(connection_created)
def _on_connection_created(sender, connection, **kwargs):
    _apply(connection, getattr(_state, "role", None))


def is_busy_error(exc: BaseException) -> bool:
    """A lock or statement timeout: someone else holds what we need (or the database is slow)."""
    cause = exc.__cause__ if isinstance(exc, OperationalError) else None
    return getattr(cause, "sqlstate", None) in (LOCK_NOT_AVAILABLE, QUERY_CANCELED)


def is_unavailable_error(exc: BaseException | None) -> bool:
    """The database did not answer: refused or lost connection, server shutting down or starting.
    A driver error without a SQLSTATE is one the server never sent (the connection failed)."""
    if not isinstance(exc, (OperationalError, InterfaceError)) or is_busy_error(exc):
        return False
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(UNAVAILABLE_SQLSTATE_CLASS) or sqlstate in UNAVAILABLE_SQLSTATES


def unavailable_response(request):
    """503 + Retry-After; rendered without the database (no session, no user, no template context)."""
    if request.path.startswith("/api/"):
        body = {"error": {"code": "database_unavailable", "message": UNAVAILABLE_MESSAGE, "fields": {}}}
        response = JsonResponse(body, status=503)
    else:
        response = HttpResponse(UNAVAILABLE_HTML.format(message=UNAVAILABLE_MESSAGE), status=503)
    response["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_SECONDS)
    return response


def database_error_response(request, exc: BaseException | None):
    """The 503 for a database error that is not the request's fault, else None."""
    if exc is None:
        return None
    if is_busy_error(exc):
        return busy_response(request)
    if is_unavailable_error(exc):
        return unavailable_response(request)
    return None


def busy_response(request):
    if request.path.startswith("/api/"):
        response = JsonResponse({"error": {"code": "busy", "message": BUSY_MESSAGE, "fields": {}}}, status=503)
    else:
        response = render(request, "busy.html", {"message": BUSY_MESSAGE}, status=503)
    response["Retry-After"] = str(BUSY_RETRY_AFTER_SECONDS)
    return response


class DatabaseRoleMiddleware:
    """Web timeouts for every request; a lock timeout or a database outage answers 503 + Retry-After
    (one raised before the view, in another middleware, reaches ``controlplane.api.handler500``)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        use_role(WEB)
        return self.get_response(request)

    def process_exception(self, request, exception):
        return database_error_response(request, exception)
