from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from .models import WorkerHeartbeat


def worker_list_alive() -> QuerySet[WorkerHeartbeat]:
    cutoff = timezone.now() - timedelta(seconds=settings.ENGINE["WORKER_STALE_SECONDS"])
    return WorkerHeartbeat.objects.filter(last_seen__gte=cutoff, stopped_at__isnull=True)
