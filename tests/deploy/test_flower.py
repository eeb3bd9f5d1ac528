"""Flower (requirements-dev.txt; docs/DEPLOYMENT.md) works against the broker."""

import os
import subprocess
import sys

import requests

from tests.deploy.conftest import free_port, wait_until
from tests.workerproc import ROOT


def test_flower_sees_a_worker_and_its_queue_through_the_broker(deploy_worker, marker, tmp_path):
    queue = f"deploy-flower-{marker}"
    deploy_worker(queues=queue, name=f"flower-{marker}")
    port = free_port()
    log = open(tmp_path / "flower.log", "wb")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.deploy.settings", "FLOWER_UNAUTHENTICATED_API": "true"}
    flower = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "controlplane", "flower", "--address=127.0.0.1", f"--port={port}"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        def workers():
            try:
                return requests.get(f"http://127.0.0.1:{port}/api/workers?refresh=1", timeout=10).json()
            except (requests.RequestException, ValueError):
                return None

        seen = wait_until(lambda: (workers() or {}).get(f"flower-{marker}@test"), 60, interval=1, message="flower")
        assert [q["name"] for q in seen["active_queues"]] == [queue]
        assert "deploy_probe_slow" in seen["registered"]
    finally:
        flower.terminate()
        flower.wait(15)
