"""The suite really runs on PostgreSQL and Redis, and tasks go through a real worker."""

import os
import subprocess
import sys
import time

import pytest
from django.db import connection

from controlplane.celery import app
from tests.workerproc import ROOT
from workers.models import WorkerHeartbeat


@pytest.mark.django_db
def test_suite_runs_on_postgresql():
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database(), version()")
        name, version = cursor.fetchone()
    assert name.startswith("test_")
    assert version.startswith("PostgreSQL")


def test_task_through_redis_is_run_by_the_worker_subprocess(live_worker):
    assert app.conf.broker_url.startswith("redis://")
    # Given a worker process serving the control queue
    # When a task is sent through the broker
    result = app.send_task("ping", args=["hello"], queue="control")
    # Then the worker subprocess ran it and its result comes back through Redis
    value = result.get(timeout=30)
    assert value["value"] == "hello"
    assert b"Task ping[" in live_worker.log_path.read_bytes()


def _wait_for_heartbeat(timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if WorkerHeartbeat.objects.filter(stopped_at__isnull=True).exists():
            return True
        time.sleep(0.2)
    return False


def test_readyz_is_200_with_a_worker_running(live_worker, client):
    assert _wait_for_heartbeat()
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]
    assert body["checks"]["workers"]["alive"] >= 1


@pytest.mark.django_db
def test_readyz_is_503_without_any_worker(client):
    WorkerHeartbeat.objects.all().delete()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["workers"]["ok"] is False


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def _manage(args, env_overrides):
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "SECRET_KEY", "DATABASE_URL"}}
    env.update(env_overrides)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)


PRODUCTION_ENV = {
    "CONTROLPLANE_ENV": "production",
    "SECRET_KEY": "x" * 20 + "a-long-random-production-secret-key-for-tests-1234567890",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/controlplane",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
    "ALLOWED_HOSTS": "cloud.example.com",
    "FIELD_ENCRYPTION_KEY": "bWFkZS11cC1mZXJuZXQta2V5LWZvci10ZXN0cy0xMjM=",
    "METRICS_TOKEN": "a-metrics-token-for-tests",
}


def test_check_deploy_is_clean_with_production_settings():
    result = _manage(["check", "--deploy", "--fail-level", "WARNING"], PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_secret_key():
    env = dict(PRODUCTION_ENV)
    del env["SECRET_KEY"]
    result = _manage(["check"], env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.parametrize("name", ["FIELD_ENCRYPTION_KEY", "METRICS_TOKEN"])
def test_production_refuses_to_start_without_the_encryption_key_or_metrics_token(name):
    env = {**PRODUCTION_ENV, name: ""}
    result = _manage(["check"], env)
    assert result.returncode != 0
    assert f"{name} must be set when CONTROLPLANE_ENV=production" in result.stderr


def test_a_wrong_database_url_is_a_clear_error():
    result = _manage(["check"], {"DATABASE_URL": "nosuchdb://x"})
    assert result.returncode != 0
    assert "DATABASE_URL is not a usable database URL" in result.stderr
