from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from .models import WorkerHeartbeat


def worker_list_alive() -> QuerySet[WorkerHeartbeat]:
    cutoff = timezone.now() - timedelta(seconds=settings.ENGINE["WORKER_STALE_SECONDS"])
    return WorkerHeartbeat.objects.filter(last_seen__gte=cutoff, stopped_at__isnull=True)


def worker_heartbeats_running() -> list[tuple[str, list[str], datetime]]:
    """(hostname, queues, last_seen) of every worker that has not said it stopped."""
    return list(WorkerHeartbeat.objects.filter(stopped_at__isnull=True).values_list("hostname", "queues", "last_seen"))
