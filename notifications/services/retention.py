"""Old rows go: finished webhook deliveries (with their attempt log) and read
notifications after ``NOTIFY_RETENTION_DAYS``. The audit log keeps the history."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from ..choices import FINAL_DELIVERY_STATES
from ..models import Notification, WebhookDelivery


def notifications_purge(*, older_than_days: int | None = None) -> dict:
    days = settings.NOTIFY_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=days)
    deliveries, _ = WebhookDelivery.objects.filter(state__in=FINAL_DELIVERY_STATES, finished_at__lt=cutoff).delete()
    notifications, _ = Notification.objects.filter(read_at__lt=cutoff).delete()
    return {"deliveries_and_attempts": deliveries, "notifications": notifications}
