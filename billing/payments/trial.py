"""The sign-up trial credit: once per verified email address, into the
user's personal project; unused credit expires by a ledger entry.

"Unused" at expiry: the trial amount less the usage charged since the grant
(usage is taken from the trial first), and never more than the balance.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

import audit
from accounts.choices import ProjectKind, Role
from accounts.models import Project

from ..choices import EntryKind
from ..models import LedgerEntry, TrialGrant
from ..money import ZERO, format_inr
from ..services.ledger import entry_post, wallet_lock
from ..services.suspension import suspension_lift_if_paid
from .selectors import payment_settings_get, trial_grants_due

ACTOR = "system:trial"


@transaction.atomic
def trial_grant(*, user, email: str, request=None) -> TrialGrant | None:
    """Credit the trial to ``user``'s personal project, unless the trial is off
    (amount 0), this address had one already, or there is no personal project.
    Registered with ``accounts.hooks`` for ``email_verified``."""
    settings = payment_settings_get()
    email = email.strip().lower()
    if settings.trial_amount <= 0 or TrialGrant.objects.filter(email=email).exists():
        return None
    project = (
        Project.objects.filter(kind=ProjectKind.PERSONAL, memberships__user=user, memberships__role=Role.OWNER)
        .order_by("pk")
        .first()
    )
    if project is None:
        return None
    wallet = wallet_lock(project_id=project.pk)
    if TrialGrant.objects.select_for_update().filter(email=email).exists():  # a racing verification won
        return None
    now = timezone.now()
    expires = now + timedelta(days=settings.trial_validity_days)
    entry = entry_post(
        wallet=wallet,
        kind=EntryKind.TRIAL,
        amount=settings.trial_amount,
        description=f"Trial credit (expires {timezone.localtime(expires, timezone.get_default_timezone()):%d %b %Y})",
        actor=ACTOR,
        at=now,
    )
    grant = TrialGrant.objects.create(
        email=email, project=project, amount=settings.trial_amount, granted_at=now, expires_at=expires, entry=entry
    )
    suspension_lift_if_paid(wallet=wallet, actor=ACTOR)
    audit.record(
        actor=ACTOR,
        action="trial.granted",
        target=grant,
        project=project,
        details={"email": email, "amount": str(grant.amount), "expires_at": expires.isoformat()},
        request=request,
    )
    return grant


@transaction.atomic
def trial_expire(*, grant_pk: int, now=None) -> TrialGrant | None:
    """Take back what is left of one expired trial (a ``trial_expiry`` entry);
    idempotent: an already expired grant is left alone."""
    now = now or timezone.now()
    project_id = TrialGrant.objects.values_list("project_id", flat=True).get(pk=grant_pk)
    wallet = wallet_lock(project_id=project_id)
    grant = TrialGrant.objects.select_for_update().get(pk=grant_pk)
    if grant.expired_at is not None or grant.expires_at > now:
        return None
    usage = (
        LedgerEntry.objects.filter(
            project_id=project_id, kind=EntryKind.USAGE, created_at__gte=grant.granted_at
        ).aggregate(total=Sum("amount"))["total"]
        or ZERO
    )
    unused = max(ZERO, min(grant.amount + usage, wallet.balance))
    entry = None
    if unused > 0:
        entry = entry_post(
            wallet=wallet,
            kind=EntryKind.TRIAL_EXPIRY,
            amount=-unused,
            description=f"Unused trial credit expired (₹{format_inr(unused)} of ₹{format_inr(grant.amount)})",
            actor=ACTOR,
            at=now,
        )
    TrialGrant.objects.filter(pk=grant.pk, expired_at__isnull=True).update(
        expired_at=now, expired_amount=unused, expiry_entry=entry
    )
    audit.record(
        actor=ACTOR,
        action="trial.expired",
        target=grant,
        project=project_id,
        details={"amount": str(grant.amount), "expired": str(unused), "balance": str(wallet.balance)},
    )
    grant.refresh_from_db()
    return grant


def trial_expire_due(*, now=None) -> int:
    """Expire every trial past its date, each in its own transaction."""
    now = now or timezone.now()
    return sum(trial_expire(grant_pk=pk, now=now) is not None for pk in trial_grants_due(now=now))
