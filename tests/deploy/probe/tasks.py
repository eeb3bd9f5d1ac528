"""Tasks that report where and how they ran, through Redis lists the test reads."""

import logging
import os
import time

import redis
from celery import shared_task
from django.conf import settings


def _redis():
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


@shared_task(bind=True, name="deploy_probe_whoami")
def deploy_probe_whoami(self, marker):
    """Returns the worker node that ran it and the queue it came from."""
    queue = (self.request.delivery_info or {}).get("routing_key")
    _redis().rpush(f"deploy-probe:{marker}", f"{self.request.hostname}|{queue}")
    return {"worker": self.request.hostname, "queue": queue}


@shared_task(bind=True, name="deploy_probe_slow")
def deploy_probe_slow(self, marker, seconds):
    """Marks start, works for ``seconds``, marks the end: a SIGTERM in between must not cut it."""
    client = _redis()
    client.rpush(f"deploy-probe:{marker}", f"started|{self.request.id}|{os.getpid()}")
    time.sleep(seconds)
    client.rpush(f"deploy-probe:{marker}", f"finished|{self.request.id}|{os.getpid()}")
    return self.request.id


@shared_task(name="deploy_probe_log")
def deploy_probe_log(marker, operation_id=None):
    """Logs one line; the test reads it back from the worker's (JSON) log."""
    logging.getLogger("tests.deploy.probe").info("probe %s says hello", marker)
    return marker
