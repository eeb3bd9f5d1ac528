"""The audit relay: committed audit events → notifications, emails and webhook deliveries.

Why this is exact (nothing lost, nothing twice): ``audit.record`` appends under a
transaction-level lock held until commit (audit/services.py), so event ids are
assigned and committed in one order; a reader that sees event N has seen every
event before it. The relay locks its cursor row, reads the events after it, writes
what they map to and moves the cursor, all in one transaction: a crash before the
commit leaves nothing written and the cursor where it was; a second relay running
at the same time skips (``SKIP LOCKED``). Unique constraints (one notification per
user and event, one delivery per endpoint and event) back this up.
"""

from django.db import transaction
from django.utils import timezone

from accounts.models import Project
from audit.models import AuditEvent

from .. import dispatch, events
from ..choices import EMAIL_OFF_BY_DEFAULT, EmailState
from ..models import Notification, NotificationPreference, RelayCursor, WebhookDelivery, WebhookEndpoint

CURSOR = "audit"
BATCH_SIZE = 500


def _email_wanted(user_ids: list[int], event_type: str) -> dict[int, bool]:
    chosen = dict(
        NotificationPreference.objects.filter(user_id__in=user_ids, event_type=event_type).values_list(
            "user_id", "email"
        )
    )
    default = event_type not in EMAIL_OFF_BY_DEFAULT
    return {pk: chosen.get(pk, default) for pk in user_ids}


def _subscribed(endpoint: WebhookEndpoint, event: AuditEvent, event_type: str) -> bool:
    """Subscribed to the type, in the event's project (or global), and made before the event."""
    if event_type not in endpoint.event_types or event.created_at < endpoint.created_at:
        return False
    return endpoint.project_id is None or endpoint.project_id == event.project_id


def _fan_out(event: AuditEvent, route, project, endpoints, now) -> tuple[list, list]:
    message = events.describe(event, route.event_type, project)
    users = events.recipients(event, route)
    wanted = _email_wanted([u.pk for u in users], route.event_type)
    notifications = [
        Notification(
            user=user,
            project=project,
            event_type=route.event_type,
            audit_event_id=event.pk,
            title=message.title[:200],
            body=message.body,
            url=message.url[:300],
            email_state=EmailState.PENDING if wanted[user.pk] else EmailState.SKIPPED,
        )
        for user in users
    ]
    body = events.payload(event, route.event_type, project)
    deliveries = [
        WebhookDelivery(
            endpoint=endpoint,
            audit_event_id=event.pk,
            event_type=route.event_type,
            payload=body,
            next_attempt_at=now,
        )
        for endpoint in endpoints
        if _subscribed(endpoint, event, route.event_type)
    ]
    return notifications, deliveries


def audit_events_relay(*, batch_size: int = BATCH_SIZE) -> dict:
    """Turn the next ``batch_size`` committed audit events into notifications and
    deliveries; publish their tasks after the commit. Returns counts and ``more``."""
    RelayCursor.objects.get_or_create(name=CURSOR)
    with transaction.atomic():
        cursor = RelayCursor.objects.select_for_update(skip_locked=True).filter(name=CURSOR).first()
        if cursor is None:
            return {"busy": True, "events": 0, "notifications": 0, "deliveries": 0, "more": False}
        batch = list(AuditEvent.objects.filter(id__gt=cursor.last_event_id).order_by("id")[:batch_size])
        if not batch:
            return {"busy": False, "events": 0, "notifications": 0, "deliveries": 0, "more": False}
        projects = Project.objects.in_bulk({e.project_id for e in batch if e.project_id})
        endpoints = list(WebhookEndpoint.objects.filter(enabled=True).defer("signing"))  # no decryption here
        now = timezone.now()
        notifications, deliveries = [], []
        for event in batch:
            route = events.route_for(event)
            if route is None:
                continue
            made = _fan_out(event, route, projects.get(event.project_id), endpoints, now)
            notifications += made[0]
            deliveries += made[1]
        Notification.objects.bulk_create(notifications)
        WebhookDelivery.objects.bulk_create(deliveries)
        RelayCursor.objects.filter(pk=cursor.pk).update(last_event_id=batch[-1].pk, updated_at=now)
        dispatch.publish_emails([n.pk for n in notifications if n.email_state == EmailState.PENDING])
        dispatch.publish_deliveries([d.pk for d in deliveries])
    return {
        "busy": False,
        "events": len(batch),
        "notifications": len(notifications),
        "deliveries": len(deliveries),
        "more": len(batch) == batch_size,
    }
