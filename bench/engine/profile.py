"""Where the time goes in one operation: every SQL statement and transaction, in order.

    .venv/bin/python bench/engine/profile.py [--action stop] [--repeat 20] [--json out.json]

Runs the engine's steps in this process (no Celery: the request, then the worker's
execute and poll steps as the tasks would call them) against a zero-latency simulator,
on a private PostgreSQL + Redis (bench/stack.py) unless BENCH_DATABASE_URL and
BENCH_BROKER_URL name ones to use (both wiped). Prints, per step, the transactions
(an explicit ``atomic`` block or an autocommit statement each counts one) and the
statements with their mean time over ``--repeat`` operations: the "where the time
goes" profile in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from bench.engine.run import configure, ensure_database, setup_catalogue  # noqa: E402
from bench.stack import Stack, exit_on_sigterm  # noqa: E402

OWN = "profile's own reads"


class Recorder:
    """A connection execute wrapper: the statements of a step and the transaction each ran in.
    A transaction is an ``atomic`` block (ended by the connection's commit or rollback) or
    one statement in autocommit mode."""

    def __init__(self, connection):
        self.connection = connection
        self.step = "-"
        self.rows: list[tuple[str, str, float, int]] = []  # (step, sql shape, seconds, transaction number)
        self.transactions = 0
        self._open = False
        for name in ("commit", "rollback"):
            original = getattr(connection, name)

            def ended(original=original):
                self._open = False
                return original()

            setattr(connection, name, ended)

    def __call__(self, execute, sql, params, many, context):
        if not self.connection.in_atomic_block:
            self.transactions += 1
        elif not self._open:
            self._open = True
            self.transactions += 1
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.rows.append((self.step, shape(sql), time.perf_counter() - start, self.transactions))


def shape(sql: str) -> str:
    words = sql.split()
    verb = words[0].upper() if words else "?"
    table = ""
    for keyword in ("FROM", "INTO", "UPDATE"):
        if keyword in [w.upper() for w in words]:
            index = [w.upper() for w in words].index(keyword)
            if index + 1 < len(words):
                table = words[index + 1].strip('"').split("(")[0]  # a function: its name
                break
    if verb == "UPDATE" and len(words) > 1:
        table = words[1].strip('"')
    if "FOR NO KEY UPDATE" in sql or "FOR UPDATE" in sql:
        verb += " … FOR UPDATE"
    if verb in ("SAVEPOINT", "RELEASE"):
        table = ""
    return f"{verb} {table}".strip()


def profile(action: str, repeat: int) -> dict:
    import django

    django.setup()
    from django.db import connection, transaction

    from compute import dispatch, services
    from compute.models import Operation, VirtualMachine
    from workers import engine

    work = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    hv, plan, image, users = setup_catalogue(str(work / "sim.sqlite3"), 0)
    hv.connection["latency"] = 0
    hv.save(update_fields=["connection"])

    published: list[tuple] = []

    def capture(name, args, queue, countdown=None):
        published.append((name, args))
        return True

    dispatch._send = capture  # the profile runs the tasks itself, in order
    transaction.on_commit = lambda func, using=None, robust=False: func()  # noqa: ARG005 (no on-commit deferral here)

    def run_tasks():
        while published:
            name, args = published.pop(0)
            if name == dispatch.EXECUTE:
                recorder.step = "worker: execute (claim, submit)"
                engine.execute_operation(args[0], worker="profile")
            elif name == dispatch.POLL:
                recorder.step = "worker: poll (write back)"
                engine.poll_operation(*args)

    recorder = Recorder(connection)
    user = users[0]
    project = user.projects.get()
    with connection.execute_wrapper(recorder):
        recorder.step = "request: create"
        request = services.vm_request_create(
            user=user, project=project, plan=plan, image=image, hypervisor=hv, name="p"
        )
        run_tasks()
        vm_id = VirtualMachine.objects.values_list("id", flat=True).get(request=request)
    recorder.rows.clear()
    recorder.transactions = 0
    actions = [action, {"stop": "start", "start": "stop"}.get(action, action)]
    with connection.execute_wrapper(recorder):
        for n in range(repeat):
            recorder.step = OWN
            vm = VirtualMachine.objects.select_related("project", "hypervisor").get(pk=vm_id)
            recorder.step = "request: action"
            op = services.vm_action(vm=vm, action=actions[n % 2], user=user)
            run_tasks()
            recorder.step = OWN
            state = Operation.objects.values_list("state", flat=True).get(pk=op.pk)
            if state != "succeeded":
                raise SystemExit(f"operation {op.pk} ended {state}")
    last_tx = {tx for step, _, _, tx in recorder.rows if step == "request: action"}
    first = max(last_tx)  # the last operation's request, then its worker steps
    trace = [(step, sql, tx - first + 1) for step, sql, _, tx in recorder.rows if tx >= first and step != OWN]
    return {**summarise(recorder.rows, repeat), "trace": trace}


def summarise(rows, repeat: int) -> dict:
    steps: dict[str, dict] = collections.OrderedDict()
    seen_tx: dict[str, set] = collections.defaultdict(set)
    for step, sql, seconds, tx in rows:
        if step.startswith("request: action") or step.startswith("worker"):
            entry = steps.setdefault(step, {"statements": collections.OrderedDict(), "seconds": 0.0})
            stat = entry["statements"].setdefault(sql, [0, 0.0])
            stat[0] += 1
            stat[1] += seconds
            entry["seconds"] += seconds
            seen_tx[step].add(tx)
    out = {"per_operation": {}, "steps": {}}
    total_tx = total_stmt = 0
    for step, entry in steps.items():
        tx = len(seen_tx[step]) / repeat
        stmts = sum(count for count, _ in entry["statements"].values()) / repeat
        total_tx += tx
        total_stmt += stmts
        out["steps"][step] = {
            "transactions": tx,
            "statements": stmts,
            "sql_ms": entry["seconds"] / repeat * 1000,
            "detail": {
                sql: [count / repeat, seconds / count * 1000] for sql, (count, seconds) in entry["statements"].items()
            },
        }
    out["per_operation"] = {"transactions": total_tx, "statements": total_stmt}
    return out


def print_profile(out: dict) -> None:
    for step, entry in out["steps"].items():
        print(
            f"\n{step}: {entry['transactions']:.1f} transactions, {entry['statements']:.1f} statements, "
            f"{entry['sql_ms']:.2f} ms in SQL"
        )
        for sql, (count, ms) in entry["detail"].items():
            print(f"  {count:5.1f} x {ms:6.3f} ms  {sql}")
    print("\nthe last operation, statement by statement (transaction number, step, statement):")
    for step, sql, tx in out["trace"]:
        print(f"  {tx:3d}  {step:34s} {sql}")
    per = out["per_operation"]
    print(f"\nper operation: {per['transactions']:.1f} transactions, {per['statements']:.1f} statements")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--action", default="stop")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    exit_on_sigterm()
    db, broker = os.environ.get("BENCH_DATABASE_URL", ""), os.environ.get("BENCH_BROKER_URL", "")

    def go():
        ensure_database()
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        out = profile(args.action, args.repeat)
        print_profile(out)
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=2))

    if db and broker:
        configure(db, broker)
        go()
        return
    with Stack(database="cp_bench") as stack:
        stack.apply_env()
        configure(stack.database_url, stack.broker_url)
        go()


if __name__ == "__main__":
    main()
