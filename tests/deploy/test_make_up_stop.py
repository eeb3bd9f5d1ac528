"""`make up`'s Ctrl-C: every process stops on its own, the worker warm, none is SIGKILLed.

honcho SIGTERMs each process group, then SIGKILLs whatever is left after its grace
period; the Makefile gives that grace STOP_GRACE seconds and the Procfile's worker
has no pool children for the group's SIGTERM to kill mid-task.
"""

import os
import signal

from tests.deploy.conftest import make_up_processes


def test_ctrl_c_stops_web_worker_and_beat_without_sigkill(tmp_path):
    # Given the embedded default (SQLite, filesystem broker, simulator) migrated and seeded, as `make up` does
    make, _bind, log, _env = make_up_processes(tmp_path)
    try:
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
    # and beat kept its schedule under CONTROLPLANE_VAR_DIR, not in the checkout's var/
    assert list((tmp_path / "var").glob("celerybeat-schedule*")), sorted(os.listdir(tmp_path / "var"))
