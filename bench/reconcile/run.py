"""Reconciliation of N VMs on one simulator hypervisor: wall time and hypervisor calls.

    .venv/bin/python bench/reconcile/run.py [--vms 10000] [--drift 0.1] [--quick]

On a private PostgreSQL (bench/stack.py), ``--vms`` VM rows and as many guests
on one simulator. One reconciliation pass (workers.engine.reconcile_hypervisor,
what the beat task runs) is timed twice:

1. steady state: database and hypervisor agree, nothing to write;
2. drift: ``--drift`` of the guests were stopped behind the control plane's
   back, 1 % removed and 20 unknown guests added (each change is one guarded
   write, a timeline event and an audit record).

Hypervisor calls are counted by the simulator (SimulatorStore.call_counts()),
SQL queries in-process. Baseline, same run and database: what a pass cannot do
without: one ``list_all()`` call plus a plain SELECT of the VM rows.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.orm import active_vms, count_queries  # noqa: E402
from bench.report import Result, command_line  # noqa: E402
from bench.stack import Stack, exit_on_sigterm  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=10000)
    parser.add_argument("--drift", type=float, default=0.1, help="fraction of guests stopped behind our back")
    parser.add_argument("--quick", action="store_true", help="CI size: 1,000 VMs")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.vms = min(args.vms, 1000)
    return args


def seed(vms: int, state_path: Path):
    """Guests on the simulator and the matching VM rows (active, running)."""
    from accounts import services as accounts
    from compute.models import Hypervisor, Image, Plan
    from workers.drivers.simulator import store_for

    hv = Hypervisor.objects.create(
        name="rec-sim", kind="simulator", queue="rec-sim", connection={"state_path": str(state_path), "latency": 0}
    )
    plan = Plan.objects.create(name="rec", vcpus=1, memory_mib=512, disk_gib=10)
    image = Image.objects.create(name="rec-img", os_name="Bench")
    users = [accounts.user_create(email=f"rec{n}@example.com", password=None) for n in range(10)]
    store = store_for(state_path)
    # The simulator's own table, filled in one transaction (add_guest() commits once per guest).
    now = time.time()
    with store.write() as db:
        db.executemany(
            "INSERT INTO guests (backend_id, name, idempotency_key, power_state, ip, created_at) VALUES (?,?,?,?,?,?)",
            [
                (
                    f"sim-{n:06d}",
                    f"vm-{n:05d}",
                    f"key-{n}",
                    "running",
                    f"10.{n // 62500 % 250}.{n // 250 % 250}.{n % 250 + 2}",
                    now,
                )
                for n in range(vms)
            ],
        )
    owners = [(user, user.projects.get()) for user in users]
    active_vms(
        hypervisor=hv,
        plan=plan,
        image=image,
        owners=owners,
        count=vms,
        name=lambda n: f"vm-{n:05d}",
        backend_id=lambda n: f"sim-{n:06d}",
    )
    return hv, store


def timed_pass(hv, store) -> tuple[float, dict, int, dict]:
    """One pass: wall time, hypervisor calls by kind, SQL statements (BEGIN/COMMIT included), report."""
    from workers import engine

    before = store.call_counts()
    with count_queries() as queries:
        started = time.perf_counter()
        report = engine.reconcile_hypervisor(hv)
        wall = time.perf_counter() - started
    after = store.call_counts()
    calls = {
        kind: after.get(kind, 0) - before.get(kind, 0) for kind in after if after.get(kind, 0) != before.get(kind, 0)
    }
    return wall, calls, len(queries.captured_queries), report


def baseline(hv, store) -> float:
    """One listing and a plain SELECT of the same VM rows: the floor of a pass."""
    from compute.models import VirtualMachine
    from workers import engine

    started = time.perf_counter()
    engine.driver_for(hv).list_all()
    list(VirtualMachine.objects.filter(hypervisor=hv).values_list("id", "backend_id", "status", "power_state"))
    return time.perf_counter() - started


def main(argv=None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    started = time.monotonic()
    result = Result(
        name="reconcile", title=f"Reconciliation of {args.vms:,} VMs on one hypervisor", command=command_line()
    )
    with Stack(database="cp_recbench", keep=args.keep) as stack:
        stack.apply_env()
        stack.manage("migrate", "--noinput")
        import django

        django.setup()
        state_path = stack.workdir / "simulator.sqlite3"
        hv, store = seed(args.vms, state_path)
        baseline(hv, store)  # warm caches
        base_steady = min(baseline(hv, store) for _ in range(3))
        steady, steady_calls, steady_queries, steady_report = timed_pass(hv, store)

        # Drift behind the control plane's back.
        n_stop, n_gone = int(args.vms * args.drift), max(1, args.vms // 100)
        with sqlite3.connect(state_path) as db:
            db.execute("UPDATE guests SET power_state = 'stopped' WHERE rowid % ? = 0", (round(1 / args.drift),))
            db.execute("DELETE FROM guests WHERE rowid % 100 = 1")
        for n in range(20):
            store.add_guest(f"stranger-{n}")
        base_drift = min(baseline(hv, store) for _ in range(3))
        drift, drift_calls, drift_queries, drift_report = timed_pass(hv, store)
        again, _, again_queries, _ = timed_pass(hv, store)

    result.add(
        "steady-state pass, nothing changed",
        steady,
        "s",
        baseline=base_steady,
        baseline_label="1 listing + SELECT of the VM rows",
    )
    result.add(
        f"pass with drift ({n_stop:,} stopped, {n_gone} gone, 20 unknown)",
        drift,
        "s",
        baseline=base_drift,
        baseline_label="1 listing + SELECT of the VM rows",
    )
    result.add("the pass after that", again, "s", baseline=base_drift, baseline_label="1 listing + SELECT")
    result.add(
        "hypervisor calls per pass (steady)",
        sum(steady_calls.values()),
        "calls",
        baseline=1,
        baseline_label="one list call",
    )
    result.add(
        "hypervisor calls per pass (drift)",
        sum(drift_calls.values()),
        "calls",
        baseline=1,
        baseline_label="one list call",
    )
    result.add("SQL queries, steady pass", steady_queries, "queries")
    result.add(
        "SQL queries, drift pass", drift_queries, "queries", baseline=steady_queries, baseline_label="steady pass"
    )
    result.notes.append(f"calls by kind: steady {steady_calls}, drift {drift_calls}")
    result.notes.append(f"reports: steady {steady_report}; drift {drift_report}")
    result.seconds = time.monotonic() - started
    result.print()
    result.write_json(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
