"""Audit of authentication events. Called by the thin receivers in
accounts/signals.py (Django sends the login signals from every login path:
allauth, the admin's login form, axes' lockout)."""

import audit

from ..models import User


def login_record(*, user: User, request=None) -> None:
    audit.record(actor=user, action="auth.login.succeeded", target=user, request=request)


def login_failure_record(*, identifier: str, reason: str, request=None) -> None:
    """A failed login. ``identifier`` is what was typed as the login (kept, cut
    to 254 characters); ``reason`` is ``credentials``, ``locked_out`` or ``otp``."""
    identifier = (identifier or "").strip().lower()[:254]
    target = User.objects.filter(email__iexact=identifier).first() if identifier else None
    audit.record(
        actor="anonymous" if reason != "otp" else target,
        action="auth.login.failed",
        target=target,
        details={"login": identifier, "reason": reason},
        request=request,
    )


def logout_record(*, user: User, request=None) -> None:
    audit.record(actor=user, action="auth.logout", target=user, request=request)
