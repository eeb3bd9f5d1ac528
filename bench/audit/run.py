"""Audit appends per second on PostgreSQL, chained vs. a plain INSERT baseline.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cp_x .venv/bin/python bench/audit/run.py

Creates a scratch database next to the one in DATABASE_URL (``<name>_auditbench``),
migrates it, and for each writer set-up (one writer, N threads, N processes):

- baseline: the same row (same table, indexes and JSON details) inserted with
  ``AuditEvent.objects.create`` in its own transaction, without the chain lock,
  the head read or hashing;
- chained: ``audit.record()``, the real code path.

Each phase runs ``--seconds``; the table is emptied between phases. At the end the
chain is verified (and timed). The scratch database is dropped unless ``--keep``.
Figures and how they were taken: docs/BENCHMARKS.md.
"""

import argparse
import multiprocessing
import os
import secrets
import statistics
import sys
import threading
import time
from pathlib import Path

import dj_database_url
import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

DETAILS = {
    "operation": 123456,
    "from": "running",
    "to": "succeeded",
    "task_ref": "UPID:pve1:0000ABCD:0123ABCD:65F00000:qmclone:101:root@pam:",
    "attempt": 1,
}


def _admin_conninfo(url: str) -> tuple[str, str]:
    """(conninfo of the server's maintenance database, name of the scratch database)."""
    cfg = dj_database_url.parse(url)
    conninfo = psycopg.conninfo.make_conninfo(
        host=cfg["HOST"] or "127.0.0.1",
        port=cfg["PORT"] or 5432,
        user=cfg["USER"] or "postgres",
        password=cfg["PASSWORD"] or None,
        dbname="postgres",
    )
    return conninfo, f"{cfg['NAME']}_auditbench"


def _scratch_url(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


def _append_baseline(i: int, writer: str) -> None:
    from django.db import transaction
    from django.utils import timezone

    from audit.chain import GENESIS
    from audit.models import AuditEvent

    with transaction.atomic():
        AuditEvent.objects.create(
            created_at=timezone.now(),
            actor=writer,
            action="operation.state_changed",
            details={**DETAILS, "i": i},
            prev_hash=GENESIS,
            hash=secrets.token_hex(32),
        )


def _append_chained(i: int, writer: str) -> None:
    import audit

    audit.record(actor=writer, action="operation.state_changed", details={**DETAILS, "i": i})


def _writer_loop(kind: str, writer: str, start, seconds: float) -> list[float]:
    from django.db import connection

    append = _append_chained if kind == "chained" else _append_baseline
    append(-1, writer)  # connect and warm up before the clock starts
    start.wait()
    latencies, deadline, i = [], time.monotonic() + seconds, 0
    while (now := time.monotonic()) < deadline:
        append(i, writer)
        latencies.append(time.monotonic() - now)
        i += 1
    connection.close()
    return latencies


def _process_main(kind, writer, start, seconds, results):
    results.put(_writer_loop(kind, writer, start, seconds))


def run_phase(kind: str, *, threads: int, processes: int, seconds: float) -> list[float]:
    """Run writers; return every append's latency (the count is the throughput)."""
    from django.db import connections

    connections.close_all()  # nothing shared with forked children
    ctx = multiprocessing.get_context("fork")
    start, results = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_process_main, args=(kind, f"worker:bench-p{n}", start, seconds, results))
        for n in range(processes)
    ]
    for proc in procs:
        proc.start()
    thread_results: list[list[float]] = []
    thread_list = [
        threading.Thread(
            target=lambda n=n: thread_results.append(_writer_loop(kind, f"worker:bench-t{n}", start, seconds))
        )
        for n in range(threads)
    ]
    for thread in thread_list:
        thread.start()
    time.sleep(1.5)  # let every writer connect and warm up
    start.set()
    latencies = [lat for _ in procs for lat in results.get(timeout=seconds + 120)]
    for proc in procs:
        proc.join()
    for thread in thread_list:
        thread.join()
    for result in thread_results:
        latencies.extend(result)
    return latencies


def empty_table() -> None:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL audit.allow_truncate = 'on'")
        cursor.execute("TRUNCATE audit_auditevent, audit_auditcheckpoint")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each phase")
    parser.add_argument("--writers", type=int, default=4, help="threads / processes in the concurrent set-ups")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("Set DATABASE_URL to a PostgreSQL server (the bench creates its own scratch database there).")
    conninfo, scratch = _admin_conninfo(url)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
        admin.execute(f'CREATE DATABASE "{scratch}"')
    os.environ["DATABASE_URL"] = _scratch_url(url, scratch)
    os.environ["DJANGO_SETTINGS_MODULE"] = "controlplane.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections

    from audit import selectors

    try:
        call_command("migrate", verbosity=0)
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            sync_commit = cursor.fetchone()[0]
            cursor.execute("SHOW server_version")
            version = cursor.fetchone()[0]
        print(
            f"PostgreSQL {version}, synchronous_commit={sync_commit}, {os.cpu_count()} CPUs, "
            f"{args.seconds:g} s per phase"
        )
        setups = [
            ("1 writer", 1, 0),
            (f"{args.writers} threads", args.writers, 0),
            (f"{args.writers} processes", 0, args.writers),
        ]
        print(f"{'writers':<14}{'baseline/s':>12}{'chained/s':>12}{'ratio':>8}{'p50 ms':>9}{'p95 ms':>9}")
        chained_total = 0
        for label, threads, processes in setups:
            empty_table()
            base = run_phase("baseline", threads=threads, processes=processes, seconds=args.seconds)
            empty_table()
            chained = run_phase("chained", threads=threads, processes=processes, seconds=args.seconds)
            chained_total = len(chained)
            quantiles = statistics.quantiles(chained, n=20)
            base_rate, chained_rate = len(base) / args.seconds, len(chained) / args.seconds
            print(
                f"{label:<14}{base_rate:>12.0f}{chained_rate:>12.0f}{chained_rate / base_rate:>8.2f}"
                f"{statistics.median(chained) * 1000:>9.2f}{quantiles[18] * 1000:>9.2f}"
            )
        started = time.monotonic()
        report = selectors.chain_verify()
        elapsed = time.monotonic() - started
        if not report.ok:
            sys.exit(f"chain BROKEN at event {report.broken_id}: {report.reason}")
        warm_up = args.writers  # one warm-up append per writer in the last phase
        assert report.checked == chained_total + warm_up, (report.checked, chained_total)
        print(f"audit_verify: {report.checked} events OK in {elapsed:.2f} s ({report.checked / elapsed:.0f} events/s)")
    finally:
        connections.close_all()
        if not args.keep:
            with psycopg.connect(conninfo, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{scratch}"')


if __name__ == "__main__":
    main()
