"""Notifications a person reads: mark read, preferences, and the email of each."""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import User
from controlplane.errors import InvalidInput

from .. import dispatch
from ..choices import EmailState, EventType
from ..models import Notification, NotificationPreference

logger = logging.getLogger(__name__)

EMAIL_MAX_ATTEMPTS = 5
EMAIL_LEASE = timedelta(minutes=2)
# An email nobody claimed this long after it was written is published again.
UNCLAIMED_GRACE = timedelta(seconds=30)


def notification_mark_read(*, user: User, ids: list[int] | None = None) -> int:
    """Mark the user's notifications read (``ids=None``: all of them); returns how many changed."""
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        unread = unread.filter(pk__in=ids)
    return unread.update(read_at=timezone.now())


@transaction.atomic
def preferences_set(*, user: User, email: dict[str, bool]) -> None:
    """Email on/off per event type; types not named keep their current setting."""
    unknown = sorted(set(email) - set(EventType.values))
    if unknown:
        raise InvalidInput(f"Unknown event types: {', '.join(unknown)}.", fields={"email": ["Unknown event type."]})
    for event_type, on in email.items():
        NotificationPreference.objects.update_or_create(user=user, event_type=event_type, defaults={"email": on})


def _claim_email(notification_id: int) -> Notification | None:
    """Compare-and-swap: take the email for ``EMAIL_LEASE`` so only one worker sends it."""
    now = timezone.now()
    claimed = (
        Notification.objects.filter(pk=notification_id, email_state=EmailState.PENDING)
        .filter(Q(email_lease_until__isnull=True) | Q(email_lease_until__lt=now))
        .update(email_lease_until=now + EMAIL_LEASE, email_attempts=F("email_attempts") + 1)
    )
    if not claimed:
        return None
    return Notification.objects.select_related("user", "project").get(pk=notification_id)


def _message(notification: Notification) -> EmailMultiAlternatives:
    site = settings.SITE_URL.rstrip("/")
    context = {
        "n": notification,
        "operator": settings.OPERATOR_NAME,
        "link": f"{site}{notification.url}" if notification.url else "",
        "preferences": f"{site}/notifications/preferences/",
        "event_label": EventType(notification.event_type).label,
    }
    subject = f"[{settings.OPERATOR_NAME}] {notification.title}"
    text = render_to_string("notifications/email/notification.txt", context)
    html = render_to_string("notifications/email/notification.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [notification.user.email])
    message.attach_alternative(html, "text/html")
    return message


def notification_email_send(*, notification_id: int) -> str:
    """Send one notification's email (HTML and text). At most one worker sends it at a
    time; a failure is retried (the beat relay re-publishes) up to EMAIL_MAX_ATTEMPTS."""
    notification = _claim_email(notification_id)
    if notification is None:
        return "not-pending"
    guarded = Notification.objects.filter(pk=notification.pk, email_state=EmailState.PENDING)
    try:
        _message(notification).send()
    except Exception as exc:
        logger.warning("notification email %s failed: %s", notification.pk, exc)
        final = notification.email_attempts >= EMAIL_MAX_ATTEMPTS
        guarded.update(
            email_state=EmailState.FAILED if final else EmailState.PENDING,
            email_error=str(exc)[:300],
            email_lease_until=timezone.now() + timedelta(seconds=30 * 2**notification.email_attempts),
        )
        return "failed" if final else "retry"
    guarded.update(email_state=EmailState.SENT, email_sent_at=timezone.now(), email_error="")
    return "sent"


def notification_emails_due(*, limit: int = 500) -> list[int]:
    """Pending emails nobody holds (never published, or a worker died): the relay publishes them again."""
    now = timezone.now()
    return list(
        Notification.objects.filter(email_state=EmailState.PENDING)
        .filter(
            Q(email_lease_until__isnull=True, created_at__lt=now - timedelta(seconds=30)) | Q(email_lease_until__lt=now)
        )
        .values_list("pk", flat=True)[:limit]
    )


def notification_emails_republish() -> int:
    due = notification_emails_due()
    if due:
        dispatch.publish_emails(due)
    return len(due)
