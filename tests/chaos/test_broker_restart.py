"""A Redis restart while a worker holds messages (every running operation has a
countdown poll task on some worker) must not leave that worker silently gone."""

import time

import pytest
from celery import Celery

from bench.stack import Stack, wait_until

pytestmark = pytest.mark.worker


def test_worker_survives_redis_restart_or_exits_non_zero(tmp_path, monkeypatch):
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)  # Celery lets it override the broker given below
    with Stack(tmp_path / "stack", database="cp_broker_restart") as stack:
        # Given a worker that holds unacknowledged countdown messages, as it does while operations poll
        worker = stack.start_worker("restart", queues="control", concurrency=1, loglevel="INFO")
        wait_until(lambda: b" ready." in worker.log.read_bytes(), 90, "worker ready")
        client = Celery(broker=stack.broker_url)
        for n in range(3):
            client.send_task("ping", args=[n], queue="control", countdown=120)
        wait_until(lambda: b"] received" in worker.log.read_bytes(), 30, "countdown tasks held")

        # When Redis restarts (it keeps nothing on disk)
        stack.restart_redis(outage=2)
        deadline = time.monotonic() + 20
        while worker.alive() and time.monotonic() < deadline:
            time.sleep(0.5)

        # Then the worker either goes on consuming, or exits with a status a supervisor restarts on
        if worker.alive():
            client.send_task("ping", args=["after"], queue="control")
            wait_until(lambda: b"'value': 'after'" in worker.log.read_bytes(), 60, "a task after the restart")
        else:
            assert worker.proc.returncode != 0, "the worker died of an error but exited 0:\n" + worker.tail()
        client.close()
