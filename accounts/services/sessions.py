"""The user's browser sessions: noted as they are used, listed on the security
page, revoked one by one (the session is deleted from Django's session store,
so the browser holding it is logged out on its next request)."""

import time
from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.db import transaction
from django.utils import timezone

import audit
from controlplane.errors import Conflict, NotFound

from ..models import User, UserSession
from ..security import client_ip


def _store(session_key: str | None = None):
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)


SESSION_TOUCHED_AT = "session_touched_at"


def session_touch(*, user: User, request) -> None:
    """Note that ``request``'s session is in use now: at login (accounts.signals)
    and then at most every SESSION_TOUCH_SECONDS (SessionActivityMiddleware)."""
    key = request.session.session_key
    if not key:
        return
    request.session[SESSION_TOUCHED_AT] = time.time()
    now = timezone.now()
    _, created = UserSession.objects.update_or_create(
        session_key=key,
        defaults={
            "user": user,
            "last_seen_at": now,
            "ip_address": client_ip(request),
            "user_agent": request.META.get("HTTP_USER_AGENT", "")[:300],
        },
    )
    if created:  # a new session: forget this user's sessions that expired long ago
        cutoff = now - timedelta(seconds=settings.SESSION_COOKIE_AGE)
        UserSession.objects.filter(user=user, last_seen_at__lt=cutoff).delete()


@transaction.atomic
def session_revoke(*, user: User, pk: int, request) -> UserSession:
    """End one of the user's other sessions. The current one ends with "Log out"."""
    session = UserSession.objects.select_for_update().filter(user=user, pk=pk).first()
    if session is None:
        raise NotFound("No such session.")
    if session.session_key == request.session.session_key:
        raise Conflict("This is the session you are using: log out instead.")
    _store().delete(session.session_key)
    session.delete()
    audit.record(
        actor=user,
        action="auth.session.revoked",
        target=user,
        details={"ip_address": session.ip_address, "user_agent": session.user_agent[:100]},
        request=request,
    )
    return session
