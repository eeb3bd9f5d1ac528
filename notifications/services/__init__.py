"""Writes of the notifications app (see the package docstring for the flow)."""

from .delivery import (
    backoff_seconds,
    signed_request,
    webhook_deliveries_republish,
    webhook_delivery_attempt,
    webhook_endpoint_disable,
)
from .inbox import notification_email_send, notification_emails_republish, notification_mark_read, preferences_set
from .relay import audit_events_relay
from .retention import notifications_purge
from .webhooks import (
    webhook_delivery_redeliver,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_update,
    webhook_secret_rotate,
)

__all__ = [
    "audit_events_relay",
    "backoff_seconds",
    "notification_email_send",
    "notification_emails_republish",
    "notification_mark_read",
    "notifications_purge",
    "preferences_set",
    "signed_request",
    "webhook_deliveries_republish",
    "webhook_delivery_attempt",
    "webhook_delivery_redeliver",
    "webhook_endpoint_create",
    "webhook_endpoint_delete",
    "webhook_endpoint_disable",
    "webhook_endpoint_update",
    "webhook_secret_rotate",
]
