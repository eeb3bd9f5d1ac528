"""Worker liveness: the worker's main process upserts a WorkerHeartbeat row
every ``WORKER_HEARTBEAT_SECONDS`` from a daemon thread; /readyz and the
operators' dashboard read it."""

import logging
import os
import threading

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from .models import WorkerHeartbeat

logger = logging.getLogger(__name__)
_stop = threading.Event()


def beat_once(hostname: str, queues: list[str], started_at) -> None:
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname,
        defaults={
            "queues": queues,
            "pid": os.getpid(),
            "started_at": started_at,
            "last_seen": timezone.now(),
            "stopped_at": None,
        },
    )


def _loop(hostname: str, queues: list[str]) -> None:
    started_at = timezone.now()
    interval = settings.ENGINE["WORKER_HEARTBEAT_SECONDS"]
    while True:
        try:
            close_old_connections()
            beat_once(hostname, queues, started_at)
        except Exception:  # the database may be restarting; try again next beat
            logger.warning("worker heartbeat failed", exc_info=True)
        finally:
            connection.close()
        if _stop.wait(interval):
            return


@worker_ready.connect
def _start(sender=None, **kwargs):
    consumer = sender
    queues = sorted(q.name for q in consumer.task_consumer.queues) if consumer and consumer.task_consumer else []
    hostname = consumer.hostname if consumer else "unknown"
    _stop.clear()
    threading.Thread(target=_loop, args=(hostname, queues), name="heartbeat", daemon=True).start()


@worker_shutdown.connect
def _shutdown(sender=None, **kwargs):
    _stop.set()
    try:
        WorkerHeartbeat.objects.filter(hostname=sender.hostname).update(stopped_at=timezone.now())
    except Exception:
        logger.warning("could not mark worker stopped", exc_info=True)
