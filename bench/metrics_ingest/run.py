"""VM metrics at scale: one collection round for 10,000 VMs, a 30-day chart, storage per VM.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cp_x .venv/bin/python bench/metrics_ingest/run.py
    .venv/bin/python bench/metrics_ingest/run.py --vms 10000 --rounds 5 --queries 200

Creates a scratch database next to the one in DATABASE_URL (``<name>_ingestbench``),
migrates it and places ``--vms`` VMs on one simulator hypervisor whose store holds
as many running guests. Then, with same-run baselines:

1. Ingest: ``--rounds`` collection rounds (the simulator driver's ``metrics()`` for
   every guest, then ``metrics_ingest``), each stamped one interval after the other.
   Wall time and CPU (this process + its PostgreSQL backend, from /proc) against the
   interval; baseline: COPY of the same sample rows into the samples table.
2. Chart: ``--queries`` GETs of /api/v1/virtual-machines/{id}/metrics/ for the last
   30 days (random VMs among ``--chart-vms`` with 30 days of hourly and 5-minute
   rollups): p50/p99 and response bytes; baseline: the bare SELECT of the same rows.
3. Storage: bytes per row of each tier (table + indexes, after VACUUM), per VM per
   month; baseline: the same readings as one row per VM per metric per sample.

Prints a plain report; the scratch database is dropped unless ``--keep``.
"""

import argparse
import dataclasses
import io
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.metrics.run import scratch_database  # noqa: E402

COLUMNS = ("cpu_pct", "mem_used", "mem_total", "disk_read_bps", "disk_write_bps", "disk_read_iops", "disk_write_iops")
COLUMNS += ("net_rx_bps", "net_tx_bps")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _backend_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _seed(vms: int, state_path: str) -> dict:
    from accounts import services as account_services
    from compute.models import Hypervisor, Image, Plan, VirtualMachine
    from workers.drivers.simulator.driver import store_for

    user = account_services.user_create(
        email="bench@example.com", password="bench-password-1", full_name="Bench", is_staff=True
    )
    hypervisor = Hypervisor.objects.create(
        name="bench-hv", kind="simulator", queue="bench-hv", connection={"state_path": state_path}
    )
    plan = Plan.objects.create(name="bench", vcpus=2, memory_mib=2048, disk_gib=20, included_transfer_gb=1000)
    image = Image.objects.create(name="bench", os_name="Debian 12")
    store = store_for(state_path)
    now = time.time()
    with store.write() as db:
        db.executemany(
            "INSERT INTO guests (backend_id, name, power_state, vcpus, memory_mib, disk_gib, created_at)"
            " VALUES (?, ?, 'running', 2, 2048, 20, ?)",
            [(f"sim-{i}", f"vm-{i}", now - 86400) for i in range(vms)],
        )
    VirtualMachine.objects.bulk_create(
        (
            VirtualMachine(
                project=user.projects.get(),
                owner=user,
                name=f"vm-{i}",
                plan=plan,
                image=image,
                hypervisor=hypervisor,
                backend_id=f"sim-{i}",
                status="active",
                power_state="running",
            )
            for i in range(vms)
        ),
        batch_size=2000,
    )
    return {"hypervisor": hypervisor, "user": user}


def _ingest(hypervisor, rounds: int, interval: int) -> list[dict]:
    from compute.services.metrics import metrics_ingest
    from workers.engine import driver_for

    driver, backend = driver_for(hypervisor), _backend_pid()
    start = time.time() - rounds * interval
    out = []
    for n in range(rounds):
        driver0 = time.perf_counter()
        readings = [dataclasses.asdict(r) for r in driver.metrics()]
        driver_seconds = time.perf_counter() - driver0
        for reading in readings:  # stamp the rounds one interval apart, as beat would
            reading["at"] = start + n * interval
        cpu0, db0, wall0 = time.process_time(), _cpu_of(backend), time.perf_counter()
        result = metrics_ingest(hypervisor_id=hypervisor.pk, readings=readings)
        wall = time.perf_counter() - wall0
        out.append(
            {
                "wall": wall,
                "cpu": time.process_time() - cpu0,
                "db_cpu": _cpu_of(backend) - db0,
                "samples": result["samples"],
                "driver_seconds": driver_seconds,
            }
        )
    return out


def _copy_baseline(vms: int, at: datetime) -> float:
    """COPY the same number of sample rows: the fastest write PostgreSQL offers."""
    from django.db import connection

    from compute.models import VirtualMachine

    ids = list(VirtualMachine.objects.values_list("pk", flat=True)[:vms])
    buffer = io.StringIO("".join(f"{vm}\t{at.isoformat()}\t" + "\t".join(["1.5"] * len(COLUMNS)) + "\n" for vm in ids))
    started = time.perf_counter()
    with (
        connection.cursor() as cursor,
        cursor.connection.cursor().copy(
            f"COPY compute_vmmetricsample (vm_id, at, {', '.join(COLUMNS)}) FROM STDIN"
        ) as copy,
    ):
        copy.write(buffer.getvalue())
    connection.commit() if not connection.get_autocommit() else None
    return time.perf_counter() - started


def _fill_rollups(chart_vms: int) -> list[int]:
    """30 days of 5-minute and hourly rollups (and 48 h of raw samples) for ``chart_vms`` VMs, in SQL."""
    from django.db import connection

    from compute.models import VirtualMachine

    ids = list(VirtualMachine.objects.order_by("pk").values_list("pk", flat=True)[:chart_vms])
    values = ", ".join(f"(random() * 100)::real AS {c}" for c in COLUMNS)
    with connection.cursor() as cursor:
        for step, span in ((300, "30 days"), (3600, "30 days")):
            cursor.execute(
                f"INSERT INTO compute_vmmetricrollup (vm_id, step, at, cpu_max, samples, {', '.join(COLUMNS)})"
                f" SELECT v, {step}, t, 90, {step // 60}, {', '.join(c for c in COLUMNS)} FROM unnest(%s::bigint[]) v,"
                f" generate_series(date_trunc('hour', now()) - interval '{span}', now() - interval '1 hour',"
                f" interval '{step} seconds') t, LATERAL (SELECT {values}) r ON CONFLICT DO NOTHING",
                [ids],
            )
        cursor.execute("ANALYZE compute_vmmetricrollup")
    return ids


def _chart(ids: list[int], user, queries: int) -> dict:
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from compute.models import VirtualMachine
    from compute.selectors_metrics import METRICS, metric_series

    client = Client()
    client.force_login(user)
    since = timezone.now() - timedelta(days=30)
    start = since.isoformat()
    times, sizes, bare, selector = [], [], [], []
    for vm in ids[:5]:  # warm-up: URL resolver, first connection, caches
        client.get(f"/api/v1/virtual-machines/{vm}/metrics/", {"from": start})
    backend = _backend_pid()
    python_cpu = backend_cpu = 0.0  # of the API requests alone: robust to a loaded machine, unlike wall time
    for _ in range(queries):
        vm = random.choice(ids)
        cpu_before, backend_before = time.process_time(), _cpu_of(backend)
        started = time.perf_counter()
        response = client.get(f"/api/v1/virtual-machines/{vm}/metrics/", {"from": start})
        times.append(time.perf_counter() - started)
        python_cpu += time.process_time() - cpu_before
        backend_cpu += _cpu_of(backend) - backend_before
        assert response.status_code == 200, response.content[:300]
        sizes.append(len(response.content))
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT at, {', '.join(COLUMNS)} FROM compute_vmmetricrollup WHERE vm_id = %s AND step = 3600"
                " AND at >= %s ORDER BY at",
                [vm, start],
            )
            cursor.fetchall()
        bare.append(time.perf_counter() - started)
        started = time.perf_counter()
        metric_series(
            vm=VirtualMachine.objects.get(pk=vm), metrics=list(METRICS), start=since, end=timezone.now(), step=None
        )
        selector.append(time.perf_counter() - started)
    points = len(response.json()["t"])
    return {
        "times": times,
        "sizes": sizes,
        "bare": bare,
        "selector": selector,
        "points": points,
        "cpu_ms": (python_cpu / queries * 1000, backend_cpu / queries * 1000),
    }


def _quantile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _storage() -> dict:
    """Bytes per row of each tier, and of a naive one-row-per-metric table holding the same samples."""
    from django.db import connection

    out = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE naive_metric (vm_id bigint, metric smallint, at timestamptz, value double precision,"
            " PRIMARY KEY (vm_id, metric, at))"
        )
        cursor.execute(
            "INSERT INTO naive_metric SELECT vm_id, m, at, 1.5 FROM compute_vmmetricsample, generate_series(1, 9) m"
        )
        for table, where in (
            ("compute_vmmetricsample", ""),
            ("compute_vmmetricrollup", "WHERE step = 300"),
            ("naive_metric", ""),
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")
            cursor.execute(f"SELECT count(*) FROM {table} {where}")
            rows = cursor.fetchone()[0]
            cursor.execute(f"SELECT count(*) FROM {table}")
            all_rows = cursor.fetchone()[0]
            cursor.execute("SELECT pg_total_relation_size(%s)", [table])
            out[table] = (cursor.fetchone()[0] / max(all_rows, 1), rows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--interval", type=int, default=60)
    parser.add_argument("--chart-vms", type=int, default=500)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/controlplane")
    with (
        tempfile.TemporaryDirectory(prefix="ingestbench-") as workdir,
        scratch_database(url, suffix="ingestbench", keep=args.keep),
    ):
        seeded = _seed(args.vms, f"{workdir}/sim.sqlite3")
        hypervisor = seeded["hypervisor"]
        rounds = _ingest(hypervisor, args.rounds, args.interval)
        driver_wall = statistics.median(r["driver_seconds"] for r in rounds[1:] or rounds)
        steady = rounds[1:] or rounds  # the first round only primes the counters
        wall = statistics.median(r["wall"] for r in steady)
        cpu = statistics.median(r["cpu"] + r["db_cpu"] for r in steady)
        copy = _copy_baseline(args.vms, datetime(2000, 1, 1, tzinfo=UTC))
        print(f"Ingest, {args.vms} VMs per round, interval {args.interval} s ({len(steady)} steady rounds, medians):")
        print(f"  driver.metrics() (simulator, {args.vms} guests, dicts included): {driver_wall:.2f} s wall")
        print(f"  metrics_ingest: {wall:.2f} s wall = {wall / args.interval * 100:.1f}% of the interval")
        print(
            f"  CPU: {cpu:.2f} s (python {statistics.median(r['cpu'] for r in steady):.2f} s + PostgreSQL backend "
            f"{statistics.median(r['db_cpu'] for r in steady):.2f} s) = {cpu / args.interval * 100:.1f}% of one core"
        )
        print(f"  whole round (driver + ingest): {driver_wall + wall:.2f} s wall")
        print(f"  baseline, COPY of {args.vms} sample rows: {copy:.2f} s ({wall / copy:.1f}x)")

        ids = _fill_rollups(args.chart_vms)
        chart = _chart(ids, seeded["user"], args.queries)
        p50, p99 = _quantile(chart["times"], 0.5), _quantile(chart["times"], 0.99)
        b50, b99 = _quantile(chart["bare"], 0.5), _quantile(chart["bare"], 0.99)
        print(f"30-day chart (all metrics, {chart['points']} points), {args.queries} requests over {len(ids)} VMs:")
        print(f"  API p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms; {statistics.median(chart['sizes'])} bytes")
        python_ms, backend_ms = chart["cpu_ms"]
        print(f"  API CPU per request: python {python_ms:.1f} ms + PostgreSQL backend {backend_ms:.1f} ms")
        s50, s99 = _quantile(chart["selector"], 0.5), _quantile(chart["selector"], 0.99)
        print(f"  query (metric_series alone): p50 {s50 * 1000:.1f} ms, p99 {s99 * 1000:.1f} ms")
        print(f"  baseline, bare SELECT of the hourly rows: p50 {b50 * 1000:.2f} ms, p99 {b99 * 1000:.2f} ms")

        storage = _storage()
        raw_row, _ = storage["compute_vmmetricsample"]
        five_row, _ = storage["compute_vmmetricrollup"]
        naive_row, _ = storage["naive_metric"]
        per_day = 86400 // args.interval
        raw = raw_row * per_day * 2
        five = five_row * 288 * 30
        hour_month = five_row * 24 * 30
        print("Storage (table + indexes, after VACUUM):")
        print(f"  raw sample row {raw_row:.0f} B; rollup row {five_row:.0f} B")
        print(f"  per VM: raw 48 h {raw / 1e6:.2f} MB + 5-min 30 d {five / 1e6:.2f} MB (both bounded)")
        print(
            f"  per VM per month kept a year: hourly {hour_month / 1e3:.0f} kB; steady state after a year "
            f"{(raw + five + 12 * hour_month) / 1e6:.2f} MB per VM"
        )
        print(
            f"  baseline, one row per VM per metric per sample: {naive_row:.0f} B x 9 metrics = "
            f"{naive_row * 9:.0f} B per VM-sample ({naive_row * 9 / raw_row:.1f}x); a month of raw minutes "
            f"{naive_row * 9 * per_day * 30 / 1e6:.1f} MB per VM vs {raw_row * per_day * 30 / 1e6:.1f} MB"
        )


if __name__ == "__main__":
    main()
