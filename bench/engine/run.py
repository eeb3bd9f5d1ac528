"""Operation engine benchmark on the real stack (PostgreSQL + Redis + worker processes).

    .venv/bin/python bench/engine/run.py [--ops 200] [--builds 1000] [--latency 5] [--throughput 1000]
    .venv/bin/python bench/engine/run.py --quick --json out.json   # CI size; figures as JSON (bench/run_all.py)

Prints, each beside a baseline measured in the same run:
1. control-plane overhead per operation (zero-latency simulator), p50/p99, vs the
   physical floor: one Celery publish+consume round trip plus three PostgreSQL
   commits (accept, claim + submit, write-back); and p50 vs a round trip plus the
   number of commits the pipeline really makes (counted from pg_stat_database);
2. N concurrent creates with L s simulated latency: wall time to all active, / L;
3. operations per second vs bare Celery no-op tasks per second on the same broker.

Runs on a private PostgreSQL + Redis it starts and stops (bench/stack.py), unless
BENCH_DATABASE_URL and BENCH_BROKER_URL name a database and a Redis db to use
instead: both are then wiped.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from bench.report import Result, command_line, pct  # noqa: E402
from bench.stack import Stack, exit_on_sigterm  # noqa: E402

DB_URL = os.environ.get("BENCH_DATABASE_URL", "")
BROKER = os.environ.get("BENCH_BROKER_URL", "")


def configure(db_url: str, broker: str) -> None:
    global DB_URL, BROKER
    DB_URL, BROKER = db_url, broker
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "controlplane.settings",
            "DATABASE_URL": DB_URL,
            "CELERY_BROKER_URL": BROKER,
            "CELERY_RESULT_BACKEND": BROKER,
            "ENGINE_POLL_MIN_SECONDS": "0.2",
            "ENGINE_POLL_MAX_SECONDS": "5",
            "LOG_LEVEL": "WARNING",
        }
    )


def ensure_database():
    import psycopg

    name = DB_URL.rsplit("/", 1)[1]
    with psycopg.connect(
        DB_URL.rsplit("/", 1)[0].replace("postgres://", "postgresql://") + "/postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def start_workers(args, log_dir: Path) -> list[subprocess.Popen]:
    procs = []
    for n in range(args.workers):
        log = open(log_dir / f"worker{n}.log", "ab")
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "celery_worker.py"),
                    "--queues",
                    "control,bench-sim",
                    "--pool",
                    args.pool,
                    "--concurrency",
                    str(args.concurrency),
                    "--hostname",
                    f"bench{n}@%h",
                    "--loglevel",
                    "WARNING",
                ],
                cwd=ROOT,
                env={**os.environ},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    return procs


def wait_workers(count: int, timeout=60):
    from workers.models import WorkerHeartbeat

    deadline = time.monotonic() + timeout
    while WorkerHeartbeat.objects.filter(stopped_at__isnull=True).count() < count:
        if time.monotonic() > deadline:
            raise SystemExit("workers did not start; see their logs")
        time.sleep(0.2)


def commits() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def setup_catalogue(state_path: str, latency: float):
    from accounts import services as accounts
    from compute.models import Hypervisor, Image, ImageReference, Plan, ProjectQuota

    hv = Hypervisor.objects.create(
        name="bench-sim",
        kind="simulator",
        queue="bench-sim",
        connection={"state_path": state_path, "latency": latency},
        max_concurrent_operations=100000,
    )
    plan = Plan.objects.create(name="bench", vcpus=1, memory_mib=512, disk_gib=10, requires_approval=False)
    image = Image.objects.create(name="bench-img", os_name="Bench")
    ImageReference.objects.create(image=image, hypervisor=hv, ref="tmpl-bench")
    users = [accounts.user_create(email=f"bench{n}@example.com", password=None) for n in range(20)]
    for user in users:
        ProjectQuota.objects.update_or_create(
            project=user.projects.get(),
            defaults={"max_vms": 100000, "max_vcpus": 100000, "max_memory_mib": 10**9, "max_disk_gib": 10**9},
        )
    return hv, plan, image, users


def set_latency(hv, latency):
    hv.connection["latency"] = latency
    hv.save(update_fields=["connection"])


def create_vms(hv, plan, image, users, count, prefix, clients=1):
    """Submit ``count`` VM requests from ``clients`` concurrent threads (like many users)."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from compute import services
    from compute.models import VirtualMachine

    def submit(n):
        try:
            user = users[n % len(users)]
            request = services.vm_request_create(
                user=user, project=user.projects.get(), plan=plan, image=image, hypervisor=hv, name=f"{prefix}-{n}"
            )
            return VirtualMachine.objects.values_list("id", flat=True).get(request=request)
        finally:
            if clients > 1:
                connection.close()

    if clients == 1:
        return [submit(n) for n in range(count)]
    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(submit, range(count)))


def wait_idle(vm_ids, timeout):
    from compute.models import VirtualMachine

    deadline = time.monotonic() + timeout
    while VirtualMachine.objects.filter(pk__in=vm_ids, task_state__isnull=False).exists():
        if time.monotonic() > deadline:
            busy = VirtualMachine.objects.filter(pk__in=vm_ids, task_state__isnull=False).count()
            raise SystemExit(f"{busy} VMs still busy after {timeout}s")
        time.sleep(0.05)


# The physical floor of one operation (issue 25): one Celery round trip and three commits,
# accept (the request), claim + submit record, write-back.
FLOOR_COMMITS = 3


def bench_floor(samples: int, commits_per_op: float) -> list[float]:
    """Celery round trip (publish, consume, result) + ``commits_per_op`` commits."""
    from django.db import connection, transaction

    from controlplane.celery import app

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_floor (id int primary key, n int)")
        cursor.execute("INSERT INTO bench_floor VALUES (1, 0) ON CONFLICT DO NOTHING")
    k = max(1, round(commits_per_op))
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        app.send_task("ping", args=[1], queue="control").get(timeout=30)
        for _ in range(k):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("UPDATE bench_floor SET n = n + 1 WHERE id = 1")
        times.append(time.perf_counter() - start)
    return times


class SideReader:
    """Waits for operations on a connection of its own, inside one READ COMMITTED
    transaction (each statement sees the latest commits) that is rolled back at the end:
    the benchmark's own polling adds no commit to the pipeline's count."""

    def __init__(self):
        import psycopg

        self.conn = psycopg.connect(DB_URL.replace("postgres://", "postgresql://"))  # autocommit off: one transaction

    def state(self, op_id: int) -> str:
        return self.conn.execute("SELECT state FROM compute_operation WHERE id = %s", [op_id]).fetchone()[0]

    def stamps(self, op_id: int) -> tuple[float, float, float]:
        """When the worker claimed, submitted and finished the operation (epoch seconds, its clock)."""
        row = self.conn.execute(
            "SELECT extract(epoch FROM started_at), extract(epoch FROM submitted_at), extract(epoch FROM finished_at)"
            " FROM compute_operation WHERE id = %s",
            [op_id],
        ).fetchone()
        return tuple(float(value) for value in row)

    def close(self):
        self.conn.rollback()
        self.conn.close()


def bench_overhead(hv, plan, image, users, ops: int):
    from django.db import transaction

    from compute import services
    from compute.models import VirtualMachine

    set_latency(hv, 0)
    vm_id = create_vms(hv, plan, image, users[:1], 1, "ovh")[0]
    wait_idle([vm_id], 60)
    reader = SideReader()
    before = commits()
    latencies, phases = [], {name: [] for name in PHASES}
    for n in range(ops):
        start, wall_start = time.perf_counter(), time.time()
        with transaction.atomic():  # the request: one transaction, as the API's would be
            vm = VirtualMachine.objects.select_related("project", "hypervisor").get(pk=vm_id)
            op = services.vm_action(vm=vm, action="stop" if n % 2 == 0 else "start", user=users[0])
        committed = time.time()
        while reader.state(op.pk) != "succeeded":
            time.sleep(0.002)
        latencies.append(time.perf_counter() - start)
        seen = time.time()
        claimed, submitted, finished = reader.stamps(op.pk)
        for name, value in zip(
            PHASES,
            (committed - wall_start, claimed - committed, submitted - claimed, finished - submitted, seen - finished),
            strict=True,
        ):
            phases[name].append(value)
    time.sleep(1.0)  # let the statistics collector catch up
    # commits() itself commits once per call (its snapshot-clearing SELECTs run in autocommit).
    per_op = (commits() - before - 1) / ops
    reader.close()
    return latencies, per_op, phases


# Where one operation's time goes, from the bench's clock and the operation's own timestamps
# (same machine, same clock): started_at is taken in the claim, submitted_at/finished_at when
# the worker records the hypervisor's answer; the last phase ends when the bench sees the commit.
PHASES = (
    "request (lock, operation row, audit, commit)",
    "hand-off (publish on commit, broker, worker takes the task, claim's reads)",
    "claim + submit to the hypervisor",
    "write-back of the answer",
    "commit + the benchmark seeing it (2 ms polling)",
)


def bench_builds(hv, plan, image, users, builds: int, latency: float):
    set_latency(hv, latency)
    start = time.perf_counter()
    vm_ids = create_vms(hv, plan, image, users, builds, "build", clients=8)
    submitted = time.perf_counter() - start
    wait_idle(vm_ids, timeout=latency * 20 + 300)
    wall = time.perf_counter() - start
    from compute.models import VirtualMachine

    active = VirtualMachine.objects.filter(pk__in=vm_ids, status="active").count()
    return wall, submitted, active


def bench_throughput(hv, plan, image, users, count: int):
    from compute import services
    from compute.models import VirtualMachine
    from controlplane.celery import app

    set_latency(hv, 0)
    vm_ids = list(VirtualMachine.objects.filter(status="active", hypervisor=hv).values_list("id", flat=True)[:count])
    start = time.perf_counter()
    for vm in VirtualMachine.objects.filter(pk__in=vm_ids).select_related("project", "hypervisor"):
        services.vm_action(vm=vm, action="stop", user=None, actor="system:bench")
    submitted = time.perf_counter() - start
    wait_idle(vm_ids, timeout=600)
    ops_rate = len(vm_ids) / (time.perf_counter() - start)

    start = time.perf_counter()
    results = [app.send_task("ping", args=[n], queue="control") for n in range(count)]
    for result in results:
        result.get(timeout=120)
    celery_rate = count / (time.perf_counter() - start)
    return ops_rate, celery_rate, len(vm_ids), submitted


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=200, help="sequential operations for the overhead figure")
    parser.add_argument("--builds", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=5.0)
    parser.add_argument("--throughput", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--pool", default="prefork")
    parser.add_argument("--quick", action="store_true", help="CI size: 30 ops, 100 builds at 2 s, 200 throughput")
    parser.add_argument("--json", default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    if args.quick:
        args.ops, args.builds, args.latency, args.throughput = 30, 100, 2.0, 200
    exit_on_sigterm()
    if DB_URL and BROKER:
        configure(DB_URL, BROKER)
        run(args)
        return
    with Stack(database="cp_bench") as stack:
        stack.apply_env()
        configure(stack.database_url, stack.broker_url)
        run(args)


def run(args) -> None:
    started = time.monotonic()
    result = Result(name="engine", title="Operation engine", command=command_line())
    ensure_database()
    import django

    django.setup()
    import redis
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    redis.Redis.from_url(BROKER).flushdb()
    work = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    hv, plan, image, users = setup_catalogue(str(work / "sim.sqlite3"), 0)
    procs = start_workers(args, work)
    try:
        wait_workers(args.workers)
        print(f"workers: {args.workers} x {args.pool}/{args.concurrency} on {os.cpu_count()} cores; logs in {work}")

        latencies, per_op, phases = bench_overhead(hv, plan, image, users, args.ops)
        floor = bench_floor(min(args.ops, 200), FLOOR_COMMITS)
        k = max(1, round(per_op))
        same = bench_floor(min(args.ops, 200), per_op) if k != FLOOR_COMMITS else floor
        for q in (50, 99):
            result.add(
                f"overhead per operation p{q} ({args.ops} sequential, zero latency)",
                pct(latencies, q) * 1000,
                "ms",
                baseline=pct(floor, q) * 1000,
                baseline_label=f"physical floor: 1 Celery round trip + {FLOOR_COMMITS} commits",
            )
        result.add(
            "overhead per operation p50, against the commits it makes",
            pct(latencies, 50) * 1000,
            "ms",
            baseline=pct(same, 50) * 1000,
            baseline_label=f"1 Celery round trip + {k} commits",
        )
        result.add(
            "PostgreSQL commits per operation", per_op, "commits", baseline=FLOOR_COMMITS, baseline_label="floor"
        )
        result.notes.append(
            "where the p50 operation's time goes (median of each phase, ms): "
            + ", ".join(f"{label} {pct(values, 50) * 1000:.1f}" for label, values in phases.items())
        )
        result.notes.append(
            "commits counted from pg_stat_database around the sequential operations; the benchmark's own"
            " polling runs in one open READ COMMITTED transaction on a side connection, so it adds none"
        )

        wall, submitted, active = bench_builds(hv, plan, image, users, args.builds, args.latency)
        result.add(
            f"{args.builds} concurrent creates, all active",
            wall,
            "s",
            baseline=args.latency,
            baseline_label="simulated create latency",
        )
        result.add(
            "creates: time after the last submission",
            wall - submitted,
            "s",
            baseline=args.latency,
            baseline_label="simulated create latency",
        )
        result.notes.append(
            f"{args.builds} requests submitted by 8 client threads in {submitted:.1f} s; {active} active at the end"
        )
        result.ok = active == args.builds

        ops_rate, celery_rate, n, submitted = bench_throughput(hv, plan, image, users, args.throughput)
        result.add(
            f"throughput ({n} operations, zero latency)",
            ops_rate,
            "ops/s",
            baseline=celery_rate,
            baseline_label="bare Celery no-op tasks/s",
        )
        result.notes.append(f"throughput operations submitted in {submitted:.1f} s")
        result.seconds = time.monotonic() - started
        result.print()
        result.write_json(args.json)
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
