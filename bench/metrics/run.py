"""What one /metrics scrape costs as the operations table grows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cp_x .venv/bin/python bench/metrics/run.py
    .venv/bin/python bench/metrics/run.py --sizes 10000,100000,1000000 --vms 5000 --scrapes 5

Creates a scratch database next to the one in DATABASE_URL (``<name>_metricsbench``),
migrates it, and grows the operations table to each size in turn (rows spread over
the last year, a few per cent failed or retried, a handful pending/running), with
``--vms`` VMs (some drifted) and 20 worker heartbeats. At each size it times
``--scrapes`` full scrapes (the collector the /metrics view runs, through the test
client) and each part of it, and prints the medians and the query count. The
scratch database is dropped unless ``--keep``. Figures: docs/BENCHMARKS.md.
"""

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

import dj_database_url
import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

OPERATIONS_SQL = """
INSERT INTO compute_operation (
    project_id, hypervisor_id, action, state, params, idempotency_key, attempts, max_attempts,
    worker, task_ref, task_data, progress_message, poll_errors, previous_status, error_code,
    error_message, result, created_at, started_at, submitted_at, finished_at, updated_at)
SELECT %(project)s, %(hypervisor)s,
       (ARRAY['create','start','stop','reboot','delete'])[1 + (i %% 5)],
       CASE WHEN i %% 50 = 0 THEN 'failed' ELSE 'succeeded' END,
       '{}', gen_random_uuid(),
       CASE WHEN i %% 20 = 0 THEN 1 + (i %% 3) ELSE 1 END, 5,
       'w@bench', 'task-' || i, '{}', '', 0, '', '', '', '{}',
       t, t + interval '1 second', t + interval '1 second',
       t + interval '1 second' + (random() * 600) * interval '1 second', now()
FROM (SELECT i, now() - random() * interval '365 days' AS t
      FROM generate_series(%(start)s, %(stop)s - 1) AS i) AS rows
"""


def _admin(url: str, suffix: str = "metricsbench") -> tuple[str, str]:
    cfg = dj_database_url.parse(url)
    conninfo = psycopg.conninfo.make_conninfo(
        host=cfg["HOST"] or "127.0.0.1",
        port=cfg["PORT"] or 5432,
        user=cfg["USER"] or "postgres",
        password=cfg["PASSWORD"] or None,
        dbname="postgres",
    )
    return conninfo, f"{cfg['NAME']}_{suffix}"


def _setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


@contextlib.contextmanager
def scratch_database(url: str, *, suffix: str, keep: bool):
    """A scratch database ``<name>_<suffix>`` beside the one in ``url``, migrated, with Django
    set up on it; dropped afterwards unless ``keep``."""
    conninfo, name = _admin(url, suffix)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        _setup_django(url.rsplit("/", 1)[0] + "/" + name)
        yield
    finally:
        from django.db import connections

        connections.close_all()
        if not keep:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _seed(vms: int) -> dict:
    from datetime import timedelta

    from django.utils import timezone

    from accounts import services as account_services
    from compute.models import Hypervisor, Image, Operation, Plan, VirtualMachine
    from workers.models import WorkerHeartbeat

    user = account_services.user_create(email="bench@example.com", password="bench-password-1", full_name="Bench")
    project = user.projects.get()
    hypervisor = Hypervisor.objects.create(name="bench-hv", kind="simulator", queue="bench-hv")
    plan = Plan.objects.create(name="bench", vcpus=1, memory_mib=1024, disk_gib=10)
    image = Image.objects.create(name="bench", os_name="Debian 12")
    now = timezone.now()
    VirtualMachine.objects.bulk_create(
        VirtualMachine(
            project=project,
            owner=user,
            name=f"vm-{i}",
            plan=plan,
            image=image,
            hypervisor=hypervisor,
            status="active" if i % 10 else "stopped",
            missing_since=now if i % 97 == 0 else None,
            lost_at=now if i % 389 == 0 else None,
        )
        for i in range(vms)
    )
    for i in range(20):
        WorkerHeartbeat.objects.create(
            hostname=f"w{i}@bench", queues=["control", "bench-hv"], pid=i, started_at=now, last_seen=now
        )
    for i, state in enumerate(["pending", "running"] * 5):
        Operation.objects.create(
            project=project,
            hypervisor=hypervisor,
            action="start",
            state=state,
            started_at=now if state == "running" else None,
            lease_until=now + timedelta(seconds=60 - 20 * i),
        )
    return {"project": project.pk, "hypervisor": hypervisor.pk}


def _grow(ids: dict, start: int, stop: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(OPERATIONS_SQL, {**ids, "start": start, "stop": stop})
        cursor.execute("ANALYZE compute_operation")


def _scrape(scrapes: int) -> tuple[float, dict, int]:
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from controlplane import metrics

    client = Client()
    totals, parts = [], {name: [] for name in metrics.COLLECTORS}
    queries = 0
    for _ in range(scrapes):
        reset_queries()
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as captured:
            body = client.get("/metrics").content.decode()
        totals.append(time.perf_counter() - started)
        queries = len(captured)
        for line in body.splitlines():
            if line.startswith("controlplane_metrics_collector_duration_seconds{"):
                name = line.split('"')[1]
                parts[name].append(float(line.rsplit(" ", 1)[1]))
    return statistics.median(totals), {k: statistics.median(v) for k, v in parts.items()}, queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--vms", type=int, default=5000)
    parser.add_argument("--scrapes", type=int, default=5)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/controlplane")
    with scratch_database(url, suffix="metricsbench", keep=args.keep):
        ids = _seed(args.vms)
        print(f"{'operations':>12} {'scrape ms':>10} {'queries':>8}  per part (ms)")
        have = 0
        for size in (int(s) for s in args.sizes.split(",")):
            grow_started = time.perf_counter()
            _grow(ids, have, size)
            grown = time.perf_counter() - grow_started
            have = size
            total, parts, queries = _scrape(args.scrapes)
            detail = "  ".join(f"{k}={v * 1000:.1f}" for k, v in parts.items())
            print(f"{size:>12} {total * 1000:>10.1f} {queries:>8}  {detail}   (insert {grown:.0f} s)")


if __name__ == "__main__":
    main()
