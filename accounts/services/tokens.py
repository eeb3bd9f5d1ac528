from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

import audit
from controlplane.errors import Conflict, Forbidden, InvalidInput, NotFound

from ..hashing import sha256, token_generate
from ..models import AccessToken, User
from ..selectors import user_has_2fa

MAX_ACTIVE_TOKENS = 50
TOUCH_EVERY = timedelta(seconds=60)


@transaction.atomic
def token_create(
    *,
    user: User,
    name: str,
    read_only: bool = False,
    expires_at: datetime | None = None,
    staff: bool = False,
    code_verified_now: bool = False,
    request=None,
) -> tuple[AccessToken, str]:
    """Create a personal access token; returns it and the raw token, which is never shown again.

    Only the SHA-256 of the secret is stored; the prefix finds the row
    (accounts.hashing). A ``staff`` token (the only kind that carries staff
    powers) needs a staff user with 2FA who entered a code in this very request
    (``code_verified_now``), and expires within ``STAFF_TOKEN_MAX_HOURS`` (by
    default exactly then).
    """
    name = (name or "").strip()
    if not name:
        raise InvalidInput("Give the token a name.", fields={"name": ["This field is required."]})
    if len(name) > 100:
        raise InvalidInput("Use at most 100 characters.", fields={"name": ["Use at most 100 characters."]})
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput("The expiry must be in the future.", fields={"expires_at": ["Must be in the future."]})
    if staff:
        expires_at = _staff_token_expiry(user=user, expires_at=expires_at, code_verified_now=code_verified_now)
    active = AccessToken.objects.filter(user=user, revoked_at__isnull=True).count()
    if active >= MAX_ACTIVE_TOKENS:
        raise Conflict(f"You already have {active} tokens; revoke some first.")
    prefix, secret, raw = token_generate()
    while AccessToken.objects.filter(prefix=prefix).exists():
        prefix, secret, raw = token_generate()
    token = AccessToken.objects.create(
        user=user,
        name=name,
        prefix=prefix,
        secret_hash=sha256(secret),
        read_only=read_only,
        staff=staff,
        expires_at=expires_at,
    )
    audit.record(
        actor=user,
        action="auth.token.created",
        target=token,
        details={
            "name": name,
            "prefix": prefix,
            "read_only": read_only,
            "staff": staff,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
        request=request,
    )
    return token, raw


def _staff_token_expiry(*, user: User, expires_at: datetime | None, code_verified_now: bool) -> datetime:
    if not (user.is_staff or user.is_superuser):
        raise Forbidden("Only operators (with staff powers in this session) can create staff tokens.")
    if not user_has_2fa(user=user):
        raise Forbidden("Staff tokens need two-factor authentication: set it up first.", code="two_factor_required")
    if not code_verified_now:
        raise Forbidden(
            "A staff token needs a current two-factor code with this request (X-OTP-Token header or the form's code).",
            code="otp_required",
        )
    latest = timezone.now() + timedelta(hours=settings.STAFF_TOKEN_MAX_HOURS)
    if expires_at is not None and expires_at > latest:
        raise InvalidInput(
            f"A staff token lives at most {settings.STAFF_TOKEN_MAX_HOURS} hours.",
            fields={"expires_at": [f"At most {settings.STAFF_TOKEN_MAX_HOURS} hours from now."]},
        )
    return expires_at or latest


@transaction.atomic
def token_revoke(*, token: AccessToken, actor: User, request=None) -> AccessToken:
    """Revoke one of the actor's own tokens (operators: anyone's). Revoking twice is harmless."""
    if token.user_id != actor.pk and not actor.is_staff:
        raise NotFound("No such token.")
    now = timezone.now()
    if AccessToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now):
        token.revoked_at = now
        audit.record(
            actor=actor,
            action="auth.token.revoked",
            target=token,
            details={"name": token.name, "prefix": token.prefix},
            request=request,
        )
    else:
        token.refresh_from_db(fields=["revoked_at"])
    return token


def token_touch(*, token: AccessToken) -> None:
    """Note the token's use, at most once a minute (one guarded UPDATE, no lock)."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
        AccessToken.objects.filter(pk=token.pk).exclude(last_used_at__gt=now - TOUCH_EVERY).update(last_used_at=now)
        token.last_used_at = now
