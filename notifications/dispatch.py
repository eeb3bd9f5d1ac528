"""Publishing of this app's tasks, by name. Best effort: the rows are the outbox, and
``relay_audit_events`` (beat) re-publishes emails and deliveries that are due."""

import logging

from django.conf import settings
from django.db import transaction

from controlplane.celery import FIRE_AND_FORGET, app

logger = logging.getLogger(__name__)

SEND_EMAIL = "send_notification_email"
DELIVER = "deliver_webhook"


def _send(name: str, args: list, countdown: float | None = None) -> bool:
    try:
        app.send_task(name, args=args, countdown=countdown, queue=settings.NOTIFY_QUEUE, **FIRE_AND_FORGET)
        return True
    except Exception:  # broker down: the beat relay publishes it again
        logger.warning("could not publish %s%s; the relay will retry", name, args, exc_info=True)
        return False


def publish_emails(notification_ids: list[int]) -> None:
    transaction.on_commit(lambda: [_send(SEND_EMAIL, [pk]) for pk in notification_ids])


def publish_deliveries(delivery_ids: list[int], countdown: float | None = None) -> None:
    transaction.on_commit(lambda: [_send(DELIVER, [pk], countdown) for pk in delivery_ids])
