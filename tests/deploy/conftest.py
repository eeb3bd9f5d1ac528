"""Fixtures for the deployment tests: workers and beats as real subprocesses
with the probe tasks (tests/deploy/settings.py), and a Redis client."""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings

from tests.workerproc import ROOT, WorkerProcess, test_database_url

DEPLOY_SETTINGS = "tests.deploy.settings"
# Keep the engine's own periodic jobs out of the beat tests' way.
QUIET_ENGINE = {
    "ENGINE_RELAY_INTERVAL_SECONDS": "3600",
    "ENGINE_REAPER_INTERVAL_SECONDS": "3600",
    "ENGINE_RECONCILE_INTERVAL_SECONDS": "3600",
}


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    yield client
    for key in client.scan_iter("deploy-probe:*"):
        client.delete(key)


@pytest.fixture
def marker():
    return uuid.uuid4().hex[:12]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status == 200
    except OSError:
        return False


_MIGRATED: dict[str, str] = {}


def _migrated_sqlite(env: dict) -> str:
    """An embedded-default SQLite database as `manage.py migrate` leaves it, made once per test
    session (migrating from nothing takes ~10-20 s here) and copied into each test's var dir.
    Only the migrations are shared: seed_demo stores paths under its own var dir, so each test seeds."""
    if "path" not in _MIGRATED:
        template = Path(tempfile.mkdtemp(prefix="cp-migrated-"))
        atexit.register(shutil.rmtree, template, True)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env={**env, "CONTROLPLANE_VAR_DIR": str(template)},
            check=True,
            capture_output=True,
        )
        _MIGRATED["path"] = str(template / "controlplane.sqlite3")
    return _MIGRATED["path"]


def make_up_processes(tmp_path):
    """`make up` on the embedded default in ``tmp_path/var`` (SQLite, filesystem broker, the
    seeded simulator): migrate and seed, then `make processes` (web, worker, beat, console
    proxy) on a free port, as its own process group. Returns (process, bind, log path, env)
    once /healthz answers and the worker is ready."""
    from bench.stack import INHERITED_NOT

    env = {key: value for key, value in os.environ.items() if not key.startswith((*INHERITED_NOT, "MAKE"))}
    env.update({"CONTROLPLANE_VAR_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1"})
    env["CONSOLE_PROXY_LISTEN"] = f"127.0.0.1:{free_port()}"  # the Procfile's console proxy, off a shared port
    (tmp_path / "var").mkdir(exist_ok=True)
    shutil.copyfile(_migrated_sqlite(env), tmp_path / "var" / "controlplane.sqlite3")
    subprocess.run([sys.executable, "manage.py", "seed_demo"], cwd=ROOT, env=env, check=True, capture_output=True)
    bind = f"127.0.0.1:{free_port()}"
    log = tmp_path / "processes.log"
    with open(log, "wb") as out:
        make = subprocess.Popen(
            ["make", "--no-print-directory", "processes", f"BIND={bind}", f"PY={sys.executable}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(lambda: b" ready." in log.read_bytes() and answers(f"http://{bind}/healthz"), 120, message="up")
    except BaseException:
        os.killpg(make.pid, signal.SIGKILL)
        raise
    return make, bind, log, env


@pytest.fixture
def deploy_worker(django_db_setup, django_db_blocker, tmp_path):
    """``deploy_worker(queues=..., name=...)``: a started worker that knows the probe tasks."""
    started: list[WorkerProcess] = []

    def start(*, queues: str, name: str, concurrency: int = 1, **env) -> WorkerProcess:
        with django_db_blocker.unblock():
            worker = WorkerProcess(
                queues=queues,
                name=name,
                log_dir=tmp_path,
                concurrency=concurrency,
                extra_env={"DJANGO_SETTINGS_MODULE": DEPLOY_SETTINGS, **env},
            )
            started.append(worker)
            return worker.start()

    yield start
    for worker in started:
        worker.kill()


class BeatProcess:
    """``celery -A controlplane beat`` in its own process group, logging to a file."""

    def __init__(self, *, name: str, log_dir, schedule: str, scheduler: str, env: dict):
        self.name, self.scheduler = name, scheduler
        self.log_path = log_dir / f"beat-{name}.log"
        self.schedule_file = log_dir / f"beat-{name}.schedule"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "TEST_BEAT_SCHEDULE": schedule, **env}
        self.proc: subprocess.Popen | None = None

    def start(self) -> "BeatProcess":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "controlplane", "beat", "--scheduler", self.scheduler,
             "--schedule", str(self.schedule_file), "--loglevel", "INFO"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, signum) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signum)
            self.proc.wait(30)


@pytest.fixture
def beat_factory(django_db_setup, django_db_blocker, tmp_path):
    """``beat_factory(name=..., schedule=json)``: a started beat process (killed at teardown).
    The beats of one test share one scheduler lock key of their own."""
    started: list[BeatProcess] = []
    lock_key = f"deploy-test-beat:{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock():
        database_url = test_database_url()

    def start(*, name: str, schedule: str, scheduler: str = "controlplane.beat:SingletonScheduler", **env):
        env = {
            "DJANGO_SETTINGS_MODULE": DEPLOY_SETTINGS,
            "DATABASE_URL": database_url,
            "BEAT_LOCK_KEY": lock_key,
            "LOG_FORMAT": "plain",
            **QUIET_ENGINE,
            **env,
        }
        beat = BeatProcess(name=name, log_dir=tmp_path, schedule=schedule, scheduler=scheduler, env=env)
        started.append(beat)
        return beat.start()

    yield start
    for beat in started:
        beat.signal(signal.SIGKILL)
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(f"{lock_key}:leader", f"{lock_key}:last-run")


def simulator_on_queue(tmp_path, queue: str, image, **connection):
    """A simulator hypervisor of its own, on ``queue``, offering ``image``."""
    from compute.models import ImageReference
    from tests.fixtures.factories import HypervisorFactory

    hypervisor = HypervisorFactory(
        queue=queue, connection={"state_path": str(tmp_path / f"{queue}.sqlite3"), "latency": 0.3, **connection}
    )
    ImageReference.objects.create(image=image, hypervisor=hypervisor, ref="tmpl-debian-12")
    return hypervisor


def request_vm(*, user, project, plan, image, hypervisor, name):
    """A VM request on a plan without approval: returns the VM's create operation."""
    from compute import services
    from compute.models import Operation

    request = services.vm_request_create(
        user=user, project=project, plan=plan, image=image, hypervisor=hypervisor, name=name
    )
    return Operation.objects.get(vm__request=request, action="create")
