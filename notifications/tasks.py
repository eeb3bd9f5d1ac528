"""Celery tasks of the notifications app. Thin: each calls one service; all are safe
to run twice or at the same time (cursor lock, compare-and-swap claims)."""

from celery import shared_task

from . import services


@shared_task(name="relay_audit_events")
def relay_audit_events() -> dict:
    """Beat: new audit events → notifications and deliveries; re-publish what is due."""
    result = services.audit_events_relay()
    if result["more"]:
        relay_audit_events.apply_async()
    result["emails_republished"] = services.notification_emails_republish()
    result["deliveries_republished"] = services.webhook_deliveries_republish()
    return result


@shared_task(name="send_notification_email")
def send_notification_email(notification_id: int) -> str:
    return services.notification_email_send(notification_id=notification_id)


@shared_task(name="deliver_webhook")
def deliver_webhook(delivery_id: int) -> str:
    return services.webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(name="purge_notifications")
def purge_notifications() -> dict:
    """Beat, daily: finished deliveries and read notifications past the retention."""
    return services.notifications_purge()
