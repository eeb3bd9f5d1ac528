"""`make up`'s Ctrl-C: every process stops on its own, the worker warm, none is SIGKILLed.

honcho SIGTERMs each process group, then SIGKILLs whatever is left after its grace
period; the Makefile gives that grace STOP_GRACE seconds and the Procfile's worker
has no pool children for the group's SIGTERM to kill mid-task.
"""

import os
import signal
import subprocess
import sys
import urllib.request

from bench.stack import INHERITED_NOT
from tests.deploy.conftest import free_port, wait_until
from tests.workerproc import ROOT


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status == 200
    except OSError:
        return False


def test_ctrl_c_stops_web_worker_and_beat_without_sigkill(tmp_path):
    # Given the embedded default (SQLite, filesystem broker, simulator) migrated and seeded, as `make up` does
    env = {key: value for key, value in os.environ.items() if not key.startswith((*INHERITED_NOT, "MAKE"))}
    env.update({"CONTROLPLANE_VAR_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1"})
    env["CONSOLE_PROXY_LISTEN"] = f"127.0.0.1:{free_port()}"  # the Procfile's console proxy, off a shared port
    for command in (["migrate", "--noinput"], ["seed_demo"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True)
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
        wait_until(lambda: b" ready." in log.read_bytes() and _answers(f"http://{bind}/healthz"), 120, message="up")

        # When the terminal's Ctrl-C reaches make and honcho (one foreground process group)
        os.killpg(make.pid, signal.SIGINT)
        make.wait(60)
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)

    # Then each process stopped by itself within the grace period, the worker after a warm shutdown
    output = log.read_text(errors="replace")
    assert "sending SIGTERM to worker.1" in output, output[-3000:]
    assert "SIGKILL" not in output, output[-3000:]
    assert "Warm shutdown" in output
    for name in ("web.1", "worker.1", "beat.1", "console.1"):
        assert f"{name} stopped" in output, output[-3000:]
    assert "ForkPoolWorker" not in output  # no pool child killed by the group's SIGTERM
