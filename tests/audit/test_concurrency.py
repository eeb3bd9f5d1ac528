"""Many writers at once, in threads and in separate processes: one unbroken chain."""

import os
import subprocess
import sys
import threading

import pytest
from django.db import connection

import audit
from audit import selectors
from audit.models import AuditEvent
from tests import workerproc

THREADS, PROCESSES, EACH = 4, 3, 40


def _thread_writer(name: str, start: threading.Event, errors: list):
    try:
        start.wait(60)
        for i in range(EACH):
            audit.record(actor=audit.worker_actor(name), action="operation.state_changed", details={"i": i})
    except Exception as exc:  # reported by the test
        errors.append(exc)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_from_threads_and_processes_form_one_chain(tmp_path):
    # Given writer processes, booted and waiting for a go signal, and writer threads
    go = tmp_path / "go"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": workerproc.test_database_url()}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.audit.appender", f"proc-{n}", str(EACH), str(go)],
            cwd=workerproc.ROOT,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    start, errors = threading.Event(), []
    threads = [threading.Thread(target=_thread_writer, args=(f"thread-{n}", start, errors)) for n in range(THREADS)]
    for thread in threads:
        thread.start()

    # When all of them append at the same time
    go.touch()
    start.set()
    for thread in threads:
        thread.join(120)
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr

    # Then every event is there, in one chain that verifies, each writer's events in its own order
    assert not errors
    events = list(AuditEvent.objects.order_by("id").values("actor", "details", "created_at"))
    assert len(events) == (THREADS + PROCESSES) * EACH
    writers = {f"worker:thread-{n}" for n in range(THREADS)} | {f"worker:proc-{n}" for n in range(PROCESSES)}
    for writer in writers:
        assert [e["details"]["i"] for e in events if e["actor"] == writer] == list(range(EACH))
    assert [e["created_at"] for e in events] == sorted(e["created_at"] for e in events)
    # and the writers really interleaved (the lock serialised them, it did not run them one after another)
    runs = sum(1 for before, after in zip(events, events[1:], strict=False) if before["actor"] != after["actor"])
    assert runs > len(writers)
    report = selectors.chain_verify()
    assert report.ok, report.reason
    assert report.checked == len(events)
