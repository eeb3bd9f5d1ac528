from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

import audit
from controlplane.errors import Conflict, InvalidInput, NotFound

from ..hashing import sha256, token_generate
from ..models import AccessToken, User

MAX_ACTIVE_TOKENS = 50
TOUCH_EVERY = timedelta(seconds=60)


@transaction.atomic
def token_create(
    *, user: User, name: str, read_only: bool = False, expires_at: datetime | None = None, request=None
) -> tuple[AccessToken, str]:
    """Create a personal access token; returns it and the raw token, which is never shown again.

    Only the SHA-256 of the secret is stored; the prefix finds the row
    (accounts.hashing).
    """
    name = (name or "").strip()
    if not name:
        raise InvalidInput("Give the token a name.", fields={"name": ["This field is required."]})
    if len(name) > 100:
        raise InvalidInput("Use at most 100 characters.", fields={"name": ["Use at most 100 characters."]})
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput("The expiry must be in the future.", fields={"expires_at": ["Must be in the future."]})
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
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
        request=request,
    )
    return token, raw


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
