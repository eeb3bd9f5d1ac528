"""Real Celery worker subprocesses for tests (never eager mode)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    """The URL of the database pytest-django created, for a subprocess."""
    s = connection.settings_dict
    auth = s["USER"] or ""
    if s.get("PASSWORD"):
        auth += f":{s['PASSWORD']}"
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class WorkerProcess:
    """``python celery_worker.py`` in its own process group, logging to a file."""

    def __init__(
        self,
        *,
        queues: str,
        name: str,
        log_dir: Path,
        concurrency: int = 4,
        pool: str = "prefork",
        extra_env: dict | None = None,
    ):
        self.queues, self.name, self.concurrency, self.pool = queues, name, concurrency, pool
        self.log_path = log_dir / f"worker-{name}.log"
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict:
        env = dict(os.environ)
        env.update(
            {"DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": test_database_url(), "PYTHONUNBUFFERED": "1"}
        )
        env.update(self.extra_env)
        return env

    def start(self, wait: bool = True) -> WorkerProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "celery_worker.py"),
                "--queues",
                self.queues,
                "--pool",
                self.pool,
                "--concurrency",
                str(self.concurrency),
                "--hostname",
                f"{self.name}@test",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            if b"ready." in self.log_path.read_bytes():
                return
            time.sleep(0.1)
        raise RuntimeError(f"worker {self.name} not ready after {timeout}s:\n{self.tail()}")

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def kill(self) -> None:
        """SIGKILL the whole process group: no warm shutdown, nothing acknowledged."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 30) -> None:
        """Warm shutdown: SIGTERM to the main process only, as systemd's ``KillMode=mixed``
        does (a SIGTERM to the whole group would kill the pool children mid-task);
        SIGKILL to the group if it has not exited within ``timeout``."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
