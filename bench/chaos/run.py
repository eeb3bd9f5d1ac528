"""Chaos run: drive VM lifecycles through the API while breaking things, then check invariants.

    .venv/bin/python bench/chaos/run.py            # 200 VMs, >= 1,000 operations
    .venv/bin/python bench/chaos/run.py --quick    # CI size: 20 VMs, ~70 operations, about 2 minutes

On a private PostgreSQL and Redis (bench/stack.py; the machine's shared ones are
never touched) it starts gunicorn, two Celery workers and beat, then drives
``--vms`` lifecycles (create, ``--actions`` start/stop/reboot/snapshot, delete) from
``--clients`` concurrent API clients, while:

- a worker is SIGKILLed every ``--kill-every`` seconds and restarted;
- the simulator fails ``--failure-rate`` (20 %) of its calls transiently;
- Redis is restarted once (losing every queued message) and PostgreSQL once;
- each job in ``JOBS`` (billing's hourly charge, once billing is installed) runs repeatedly;
  after the drain, ``AFTER_DRAIN`` charges the next hours, each twice and concurrently.

Then it lets the system drain (bounded), stops the processes, runs one
reconciliation pass and checks the invariants in bench/chaos/invariants.py.
Exit status 1 when any is violated (with the offending ids), 2 when the harness
itself failed. ``--write-docs`` puts the figures in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.report import Result, command_line, facts_line, machine_facts, pct, replace_block  # noqa: E402
from bench.stack import Stack, exit_on_sigterm  # noqa: E402

QUEUE = "chaos-sim"
# Engine timings: production's shape, shortened so recovery happens within the run.
ENGINE = {
    "LEASE_SECONDS": 10,
    "RELAY_AFTER_SECONDS": 5,
    "RELAY_INTERVAL_SECONDS": 3,
    "REAPER_INTERVAL_SECONDS": 3,
    "RECONCILE_INTERVAL_SECONDS": 10,
    "MISSING_GRACE_SECONDS": 30,
    "POLL_MIN_SECONDS": 0.2,
    "POLL_MAX_SECONDS": 2,
    "RETRY_BASE_SECONDS": 0.5,
    "RETRY_MAX_SECONDS": 4,
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI size: few VMs, short intervals")
    parser.add_argument("--vms", type=int, default=200)
    parser.add_argument("--actions", type=int, default=4, help="actions per VM between create and delete")
    parser.add_argument("--keep-alive", type=float, default=0.4, help="fraction of VMs not deleted at the end")
    parser.add_argument("--cancel-rate", type=float, default=0.05, help="chance a user cancels an operation early")
    parser.add_argument("--clients", type=int, default=40, help="concurrent API clients")
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--kill-every", type=float, default=5.0, help="seconds between worker SIGKILLs")
    parser.add_argument("--failure-rate", type=float, default=0.2, help="transient failure rate of simulator calls")
    parser.add_argument("--latency", type=float, default=0.5, help="simulated seconds per action (create: 3x)")
    parser.add_argument("--redis-at", type=float, default=0.3, help="restart Redis at this fraction of operations")
    parser.add_argument("--postgres-at", type=float, default=0.6, help="restart PostgreSQL at this fraction")
    parser.add_argument("--outage", type=float, default=3.0, help="seconds Redis / PostgreSQL stay down")
    parser.add_argument(
        "--postgres-stop",
        default="fast",
        choices=["smart", "fast", "immediate"],
        help="pg_ctl stop mode (immediate: a crash)",
    )
    parser.add_argument("--drain", type=float, default=150, help="seconds allowed for the system to settle")
    parser.add_argument("--concurrency", type=int, default=4, help="prefork children per worker")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, databases)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", default=None, help="write the figures as JSON here")
    parser.add_argument("--write-docs", action="store_true", help="put the figures in docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in {
            "vms": 20,
            "actions": 2,
            "clients": 20,
            "users": 4,
            "kill_every": 5.0,
            "outage": 2.0,
            "drain": 60,
        }.items():
            if parser.get_default(name) == getattr(args, name):
                setattr(args, name, value)
    return args


def planned_operations(args) -> int:
    return round(args.vms * (args.actions + 1) + args.vms * (1 - args.keep_alive))


class Log:
    def __init__(self):
        self.start = time.monotonic()
        self.events: list[str] = []

    def __call__(self, message: str) -> None:
        line = f"[{time.monotonic() - self.start:6.1f}s] {message}"
        self.events.append(line)
        print(line, flush=True)


# -- set-up ----------------------------------------------------------------------------------------------


def seed(args, state_path: Path) -> tuple[dict, list, int]:
    """Catalogue, users with API tokens; returns (catalogue ids, accounts, hypervisor id)."""
    from accounts import services as accounts
    from bench.chaos.driver import Account
    from compute.models import Hypervisor, Image, ImageReference, Plan, ProjectQuota

    hv = Hypervisor.objects.create(
        name="chaos-sim",
        kind="simulator",
        queue=QUEUE,
        connection={
            "state_path": str(state_path),
            "latency": args.latency,
            "latency_create": args.latency * 3,
            "transient_failure_rate": args.failure_rate,
        },
        max_concurrent_operations=10000,
    )
    plan = Plan.objects.create(
        name="chaos",
        vcpus=1,
        memory_mib=512,
        disk_gib=10,
        requires_approval=False,
        price_hourly_running=Decimal("1.5000"),
        price_hourly_stopped=Decimal("0.2500"),
    )
    bigger = Plan.objects.create(  # resizes go up and down between the two (same disk: both ways allowed)
        name="chaos-big",
        vcpus=2,
        memory_mib=1024,
        disk_gib=10,
        requires_approval=False,
        price_hourly_running=Decimal("3.0000"),
        price_hourly_stopped=Decimal("0.2500"),
    )
    image = Image.objects.create(name="chaos-img", os_name="Chaos Linux")
    ImageReference.objects.create(image=image, hypervisor=hv, ref="tmpl-chaos")
    other = Image.objects.create(name="chaos-img-2", os_name="Chaos Linux 2")  # rebuilds pick either
    ImageReference.objects.create(image=other, hypervisor=hv, ref="tmpl-chaos-2")
    accounts_ = []
    for n in range(args.users):
        user = accounts.user_create(email=f"chaos{n}@example.com", password=None)
        project = user.projects.get()
        ProjectQuota.objects.update_or_create(
            project=project,
            defaults={"max_vms": 100000, "max_vcpus": 100000, "max_memory_mib": 10**9, "max_disk_gib": 10**9},
        )
        for hook in SEED_HOOKS:
            hook(project=project, user=user)
        _, token = accounts.token_create(user=user, name="chaos")
        accounts_.append(Account(email=user.email, token=token, project=project.slug))
    catalogue = {"plan": plan.pk, "image": image.pk, "hypervisor": hv.pk}
    catalogue.update(plans=[plan.pk, bigger.pk], images=[image.pk, other.pk])
    return catalogue, accounts_, hv.pk


def _fund_wallet(*, project, user) -> None:
    """With billing installed, a paid VM request needs a billing profile and a wallet that can pay."""
    try:
        from billing.services import billing_profile_update, wallet_topup
    except ImportError:
        return
    billing_profile_update(
        project=project,
        actor="system:chaos",
        legal_name=f"{project.name} Customer",
        address_line1="42 Residency Road",
        city="Bengaluru",
        pin="560025",
        state_code="29",
    )
    wallet_topup(project=project, amount=Decimal("1000000.00"), actor="system:chaos", reference=f"chaos-{project.pk}")


SEED_HOOKS = [_fund_wallet]


def _billing_job():
    """The hourly charge job as beat runs it (real time: it meters the hours that ended)."""
    try:
        from billing.services import billing_run_hourly
    except ImportError:
        return None
    return billing_run_hourly


def _billing_catch_up(log: Log) -> None:
    """After the drain: the charge job for the next hours (the VMs' histories are complete
    now), each hour twice and from two threads at once: nothing may be metered or charged twice."""
    try:
        from billing.services import billing_run_hourly
    except ImportError:
        return
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    start = timezone.now()

    def charge(hours: int) -> dict:
        try:
            return billing_run_hourly(now=start + timedelta(hours=hours))
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        for hours in (1, 1, 2, 2, 3):
            results = list(pool.map(charge, [hours, hours]))
            log(f"billing charge job at +{hours} h, twice at once: {results}")


# Jobs run repeatedly during the chaos (name, factory returning a callable or None when not
# installed), and what runs once after the drain, before the invariants.
JOBS = [("billing hourly charge", _billing_job)]
AFTER_DRAIN = [_billing_catch_up]


# -- chaos -------------------------------------------------------------------------------------------------


class Chaos(threading.Thread):
    """Kills workers on a timer, restarts Redis and PostgreSQL at given progress,
    restarts any process that died on its own (as systemd would) and counts it."""

    def __init__(self, stack: Stack, args, ledger, planned: int, log: Log):
        super().__init__(daemon=True, name="chaos")
        self.stack, self.args, self.ledger, self.planned, self.log = stack, args, ledger, planned, log
        self.stop_event = threading.Event()
        self.kills = 0
        self.ready_after: list[float] = []  # seconds from restart to the first heartbeat
        self.restarts: list[str] = []
        self.crashes: Counter = Counter()
        self.redis_done = self.postgres_done = False

    def progress(self) -> float:
        return self.ledger.submitted() / max(1, self.planned)

    def ready(self, name: str) -> bool:
        """The worker's current process has sent a heartbeat (it is consuming)."""
        from django.db import close_old_connections, connection

        from workers.models import WorkerHeartbeat

        service = self.stack.services[name]
        if not service.alive():
            return False
        try:
            close_old_connections()
            return WorkerHeartbeat.objects.filter(hostname=f"{name}@proof", pid=service.proc.pid).exists()
        except Exception:
            connection.close()
            return False

    def run(self) -> None:
        """Every ``kill_every`` seconds SIGKILL one worker and start it again, taking
        turns, but only while the other one is up and consuming: like a fleet where
        any process may die at any moment, not one where all are down at once."""
        workers = ["worker1", "worker2"]
        next_kill = time.monotonic() + self.args.kill_every
        turn = 0
        restarted: dict[str, float] = {}
        while not self.stop_event.wait(0.25):
            self.supervise()
            for name, since in list(restarted.items()):
                if self.ready(name):
                    self.ready_after.append(time.monotonic() - since)
                    del restarted[name]
            victim, other = workers[turn % 2], workers[(turn + 1) % 2]
            if time.monotonic() >= next_kill and other not in restarted and self.ready(other):
                turn += 1
                self.stack.services[victim].kill()
                self.kills += 1
                time.sleep(0.5)
                self.stack.services[victim].start()
                restarted[victim] = time.monotonic()
                next_kill = time.monotonic() + self.args.kill_every
            if not self.redis_done and self.progress() >= self.args.redis_at:
                self.redis_done = True
                self.log(f"restarting Redis ({self.args.outage:g} s down; every queued message is lost)")
                self.ledger.phase = "Redis restart"
                self.stack.restart_redis(self.args.outage)
                time.sleep(2)  # reconnecting
                self.ledger.phase = ""
                self.restarts.append("redis")
                self.log("Redis is back")
            if not self.postgres_done and self.progress() >= self.args.postgres_at:
                self.postgres_done = True
                self.log(f"restarting PostgreSQL ({self.args.postgres_stop} stop, {self.args.outage:g} s down)")
                self.ledger.phase = "PostgreSQL restart"
                self.stack.restart_postgres(self.args.outage, mode=self.args.postgres_stop)
                time.sleep(2)
                self.ledger.phase = ""
                self.restarts.append("postgres")
                self.log("PostgreSQL is back")

    def supervise(self) -> None:
        for name, service in self.stack.services.items():
            if service.proc is not None and not service.alive():
                code = service.proc.returncode
                self.crashes[f"{name} (exit status {code})"] += 1
                self.log(f"{name} exited on its own (code {code}); restarting it. Last lines:\n{service.tail(8)}")
                service.start()

    def finish(self) -> None:
        """Stop breaking things; make sure the restarts happened even if the clients were quick."""
        self.stop_event.set()
        self.join(30)
        if not self.redis_done:
            self.redis_done = True
            self.stack.restart_redis(self.args.outage)
            self.restarts.append("redis (after the clients)")
        if not self.postgres_done:
            self.postgres_done = True
            self.stack.restart_postgres(self.args.outage, mode=self.args.postgres_stop)
            self.restarts.append("postgres (after the clients)")
        self.supervise()


class JobRunner(threading.Thread):
    """Runs a job (billing's hourly charge) again and again; errors during outages are expected."""

    def __init__(self, name: str, func, log: Log, every: float = 2.0):
        super().__init__(daemon=True, name=name)
        self.func, self.log, self.every = func, log, every
        self.stop_event = threading.Event()
        self.runs = self.errors = 0
        self.last_result = None
        self.last_error = ""

    def run(self) -> None:
        from django.db import close_old_connections, connection

        while not self.stop_event.wait(self.every):
            try:
                close_old_connections()
                self.last_result = self.func()
                self.runs += 1
            except Exception as exc:
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                connection.close()


# -- the run -------------------------------------------------------------------------------------------------


def active_operations() -> int | None:
    from django.db import close_old_connections, connection

    from compute.choices import ACTIVE_OPERATION_STATES
    from compute.models import Operation

    try:
        close_old_connections()
        return Operation.objects.filter(state__in=ACTIVE_OPERATION_STATES).count()
    except Exception:
        connection.close()
        return None


def drive(args, stack: Stack, catalogue: dict, accounts: list, log: Log):
    from bench.chaos.driver import Behaviour, Client, Ledger, lifecycle

    ledger = Ledger()
    planned = planned_operations(args)
    chaos = Chaos(stack, args, ledger, planned, log)
    jobs = []
    for name, factory in JOBS:
        func = factory()
        if func is not None:
            jobs.append(JobRunner(name, func, log))
    rng = random.Random(args.seed)
    seeds = [rng.randrange(2**32) for _ in range(args.vms)]
    clients = threading.local()

    def one(n: int) -> None:
        if not hasattr(clients, "by_account"):
            clients.by_account = {}
        account = accounts[n % len(accounts)]
        if account.email not in clients.by_account:
            clients.by_account[account.email] = Client(stack.web_url, account, ledger)
        client = clients.by_account[account.email]
        how = Behaviour(
            actions=args.actions,
            delete=n >= args.vms * args.keep_alive,
            cancel_rate=args.cancel_rate,
            op_timeout=args.drain * 2,
        )
        lifecycle(client, n=n, catalogue=catalogue, how=how, rng=random.Random(seeds[n]))

    chaos.start()
    for job in jobs:
        job.start()
    started = time.monotonic()
    pool = ThreadPoolExecutor(args.clients, thread_name_prefix="client")
    try:
        futures = [pool.submit(one, n) for n in range(args.vms)]
        while not all(f.done() for f in futures):
            time.sleep(5)
            log(
                f"operations accepted {ledger.submitted()}, finished {ledger.finished()}, "
                f"lifecycles done {sum(f.done() for f in futures)}/{args.vms}, kills {chaos.kills}"
            )
    finally:
        ledger.stopping.set()  # on an interruption the clients give up at once
        pool.shutdown(wait=True, cancel_futures=True)
    driving = time.monotonic() - started
    chaos.finish()
    for job in jobs:
        job.stop_event.set()
        job.join(30)
    return ledger, chaos, jobs, driving


def drain(args, log: Log) -> float:
    started = time.monotonic()
    deadline = started + args.drain
    while time.monotonic() < deadline:
        active = active_operations()
        if active == 0:
            return time.monotonic() - started
        time.sleep(1)
    log(f"drain: operations still active after {args.drain:g} s")
    return time.monotonic() - started


def reconcile_once(hypervisor_id: int) -> dict:
    """One reconciliation pass on a hypervisor that no longer fails on purpose."""
    from compute.models import Hypervisor
    from workers import engine

    hv = Hypervisor.objects.get(pk=hypervisor_id)
    hv.connection["transient_failure_rate"] = 0
    hv.save(update_fields=["connection"])
    return engine.reconcile_hypervisor(hv)


def repeated_effects(state_path: Path) -> Counter:
    """Operations whose action the hypervisor carried out more than once (a re-submission
    after a crash between submit and recording the handle): by action."""
    from collections import defaultdict

    from compute.models import Operation
    from workers.drivers.simulator import store_for

    started = defaultdict(list)
    for row in store_for(state_path).read().execute("SELECT backend_id, action, started_at FROM tasks"):
        started[(row["backend_id"], row["action"])].append(row["started_at"])
    repeated = Counter()
    ops = Operation.objects.filter(state="succeeded", finished_at__isnull=False).exclude(action="create")
    for op in ops.select_related("vm").only("action", "created_at", "finished_at", "vm__backend_id"):
        window = (op.created_at.timestamp(), op.finished_at.timestamp())
        times = started.get((op.vm.backend_id, op.action), [])
        if sum(window[0] <= t <= window[1] for t in times) > 1:
            repeated[op.action] += 1
    return repeated


def figures(args, ledger, chaos, jobs, driving: float, drained: float, checks, stack_facts: dict) -> Result:
    from django.db.models import Sum

    from audit.models import AuditEvent
    from compute.models import Operation

    ops = Operation.objects.filter(finished_at__isnull=False)
    result = Result(name="chaos", title="Chaos run", command=command_line())
    result.add("operations accepted through the API", ledger.submitted(), "ops")
    result.add("VMs driven", len(ledger.vms), "VMs")
    total_attempts = ops.aggregate(n=Sum("attempts"))["n"] or 0
    result.add(
        "attempts per operation",
        total_attempts / max(1, ops.count()),
        "attempts",
        baseline=1,
        baseline_label="one attempt each",
    )
    latencies = sorted(
        (op.finished_at - op.created_at).total_seconds()
        for op in ops.only("created_at", "finished_at").exclude(action="create")
    )
    if latencies:
        for q in (50, 99):
            result.add(
                f"start/stop/reboot/delete p{q}, request to final state",
                pct(latencies, q),
                "s",
                baseline=args.latency,
                baseline_label="simulated action latency",
            )
    result.add(
        "worker SIGKILLs",
        chaos.kills,
        "kills",
        baseline=driving / args.kill_every,
        baseline_label=f"one per {args.kill_every:g} s of driving",
    )
    if chaos.ready_after:
        result.add("worker restart to first heartbeat, p50", pct(chaos.ready_after, 50), "s")
    repeated = repeated_effects(Path(args.state_path))
    result.add(
        "operations the hypervisor carried out twice",
        sum(repeated.values()),
        "ops",
        baseline=0,
        baseline_label="exactly once",
        note=", ".join(f"{a} {n}" for a, n in sorted(repeated.items())),
    )
    result.add("driving time (all lifecycles)", driving, "s")
    result.add("operations per second under chaos", ledger.submitted() / max(driving, 1e-9), "ops/s")
    result.add("drain time after the clients finished", drained, "s", baseline=args.drain, baseline_label="allowed")
    by = Counter(Operation.objects.values_list("action", "state"))
    result.notes.append(
        "operations by action and final state: "
        + ", ".join(f"{action} {state} {n}" for (action, state), n in sorted(by.items()))
    )
    reaped = AuditEvent.objects.filter(actor="reaper", action="operation.state_changed").count()
    retried = Operation.objects.filter(attempts__gt=1).count()
    failed_msgs = Counter(Operation.objects.filter(state="failed").values_list("error_code", flat=True).order_by())
    result.notes.append(
        f"faults: {chaos.kills} worker SIGKILLs, restarts of {', '.join(chaos.restarts)}, "
        f"simulator transient failure rate {args.failure_rate:.0%}; {reaped} operations handed back by the reaper, "
        f"{retried} needed more than one attempt"
    )
    if failed_msgs:
        result.notes.append(
            "failed operations by error code: " + ", ".join(f"{c or '?'} {n}" for c, n in failed_msgs.most_common())
        )
    unrecoverable = Counter()
    for name, service in chaos.stack.services.items():
        try:
            crashed = service.log.read_text(errors="replace").count("Unrecoverable error")
        except FileNotFoundError:
            continue
        if crashed:
            unrecoverable[name] += crashed
    if unrecoverable:
        result.notes.append(
            "celery 'Unrecoverable error' (kombu, after the Redis restart) in the logs of: "
            + ", ".join(f"{name} x{n}" for name, n in sorted(unrecoverable.items()))
        )
    if chaos.crashes:
        result.notes.append(
            "processes that exited on their own (restarted): "
            + ", ".join(f"{name} x{n}" for name, n in sorted(chaos.crashes.items()))
        )
    if ledger.operator:
        result.notes.append(
            "users' cancels and retries: "
            + ", ".join(f"{kind} {outcome} {n}" for (kind, outcome), n in sorted(ledger.operator.items()))
        )
    if ledger.http_errors:
        result.notes.append(
            "client-side errors retried: " + ", ".join(f"{k} {v}" for k, v in sorted(ledger.http_errors.items()))
        )
    for job in jobs:
        result.notes.append(
            f"{job.name}: {job.runs} runs, {job.errors} failed (last error: {job.last_error or 'none'}); "
            f"last result {job.last_result}"
        )
    if ledger.failures:
        result.notes.append(f"{len(ledger.failures)} client lifecycles ended abnormally (see above)")
    result.ok = all(check.ok for check in checks)
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    log = Log()
    facts = machine_facts()
    log(
        f"chaos run: {args.vms} VMs, create + {args.actions} actions each, {1 - args.keep_alive:.0%} then deleted: "
        f"about {planned_operations(args)} operations, "
        f"{args.clients} clients, SIGKILL every {args.kill_every:g} s, {args.failure_rate:.0%} transient failures"
    )
    stack = Stack(
        args.workdir,
        keep=args.keep,
        database="cp_chaos",
        engine=ENGINE,
        extra_env={"CELERY_VISIBILITY_TIMEOUT": "60", "WORKER_HEARTBEAT_SECONDS": "2"},
    )
    try:
        result, checks = run(args, stack, log, facts)
    except Exception:
        import traceback

        traceback.print_exc()
        for service in stack.services.values():
            print(f"--- {service.name} log tail ---\n{service.tail(20)}")
        stack.keep = True
        print(f"harness failure; work directory kept: {stack.workdir}")
        return 2
    finally:
        stack.close()
    facts["load_average_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    result.seconds = time.monotonic() - log.start
    result.print()
    print("\ninvariants:")
    for check in checks:
        print("\n".join(check.lines()))
    if stack.keep:
        print(f"work directory kept: {stack.workdir}")
    result.notes.append(
        "invariants: " + "; ".join(f"{'FAIL' if not c.ok else 'skip' if c.skipped else 'ok'} {c.name}" for c in checks)
    )
    result.write_json(args.json)
    if args.write_docs:
        write_docs(result, checks, facts)
    print(f"\nchaos run {'PASSED' if result.ok else 'FAILED'} in {result.seconds:.0f} s")
    return 0 if result.ok else 1


def run(args, stack: Stack, log: Log, facts: dict):
    """Start everything, drive, drain, reconcile once, check. Returns (result, checks)."""
    stack.start()
    stack.apply_env()
    facts.update(stack.facts())
    log(f"private PostgreSQL on {stack.postgres.port}, Redis on {stack.redis.port}; work dir {stack.workdir}")
    stack.manage("migrate", "--noinput")
    import django

    django.setup()
    state_path = stack.workdir / "simulator.sqlite3"
    args.state_path = str(state_path)
    stack.start_web(workers=2, threads=4)
    catalogue, accounts, hv_id = seed(args, state_path)
    for n in (1, 2):
        stack.start_worker(f"worker{n}", queues=f"control,{QUEUE}", concurrency=args.concurrency)
    stack.start_beat()
    log(f"web on {stack.web_url}, 2 workers x {args.concurrency}, beat; driving")

    ledger, chaos, jobs, driving = drive(args, stack, catalogue, accounts, log)
    log(f"clients done in {driving:.1f} s; draining (up to {args.drain:g} s)")
    drained = drain(args, log)
    log(f"drained in {drained:.1f} s; stopping workers, beat and web")
    for name in ("beat", "worker1", "worker2", "web"):
        stack.services[name].stop()
    from django.db import connection

    connection.close()
    log(f"reconciliation pass: {reconcile_once(hv_id)}")
    for hook in AFTER_DRAIN:
        hook(log)

    from bench.chaos.invariants import Context
    from bench.chaos.invariants import run_all as run_checks

    timings = (
        "LEASE_SECONDS",
        "REAPER_INTERVAL_SECONDS",
        "RELAY_AFTER_SECONDS",
        "RELAY_INTERVAL_SECONDS",
        "RETRY_MAX_SECONDS",
    )
    context = Context(
        state_path=str(state_path),
        hypervisor_id=hv_id,
        ledger=ledger,
        attempt_seconds=sum(ENGINE[name] for name in timings),
        slack_seconds=2 * args.outage + 60,
    )
    checks = run_checks(context)
    for failure in ledger.failures[:20]:
        log(f"client lifecycle problem: {failure}")
    result = figures(args, ledger, chaos, jobs, driving, drained, checks, facts)
    if ledger.failures or not result.ok:
        stack.keep = True
    return result, checks


def write_docs(result: Result, checks, facts: dict) -> None:
    lines = [
        "## Chaos run: last result",
        "",
        f"`{result.command}` — {facts_line(facts)}; {result.seconds:.0f} s in all.",
        "",
        result.markdown_table(),
        "",
        *[f"- {note}" for note in result.notes if not note.startswith("invariants:")],
        "",
        "Invariants:",
        "",
        "```",
        *[line for check in checks for line in check.lines()],
        "```",
    ]
    replace_block("chaos", "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
