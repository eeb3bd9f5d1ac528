"""Run every benchmark, print each figure beside its same-run baseline, write docs/BENCHMARKS.md.

    .venv/bin/python bench/run_all.py              # full size (make bench)
    .venv/bin/python bench/run_all.py --quick      # CI size, a few minutes
    .venv/bin/python bench/run_all.py --only api reconcile --no-docs

Each benchmark runs as its own process, under ``--timeout`` (ten minutes), on a
private PostgreSQL and Redis (bench/stack.py): the machine's shared services are
neither used nor disturbed. Benchmarks that take their database from the
environment (audit, billing, metrics, metrics_ingest) get a private stack started here; the
others start their own. A benchmark whose script is missing (billing, before
it lands) is listed as pending.

Each benchmark's figures go into docs/BENCHMARKS.md between
``<!-- BEGIN generated:bench-NAME -->`` and ``<!-- END generated:bench-NAME -->``
(with the date, the machine and its load); the chaos run writes its own block.
Exit status 1 if any benchmark failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING) ")  # a logger, not a figure
sys.path.insert(0, str(ROOT))

from bench.report import Result, facts_line, machine_facts, replace_block  # noqa: E402
from bench.stack import Stack, exit_on_sigterm  # noqa: E402


@dataclass
class Bench:
    name: str
    title: str
    script: str
    args: list[str] = field(default_factory=list)
    quick: list[str] = field(default_factory=list)
    json: bool = True  # understands --json PATH
    env: str = ""  # takes its database from the environment (DATABASE_URL or its own variable): gets the private one
    what: str = ""


BENCHMARKS = [
    Bench(
        "engine",
        "Operation engine: overhead, 1,000 concurrent creates, throughput",
        "bench/engine/run.py",
        args=["--ops", "200", "--builds", "1000", "--latency", "5", "--throughput", "1000"],
        quick=["--quick"],
        what="Per-operation overhead vs one Celery round trip + the same number of commits; 1,000 creates with "
        "5 s simulated latency vs that latency; operations/s vs bare Celery no-op tasks/s",
    ),
    Bench(
        "api",
        "API: listing 1,000 VMs and posting actions under 50 concurrent clients",
        "bench/api/run.py",
        quick=["--quick"],
        what="wrk on loopback against gunicorn; p50/p99 and req/s vs GET /api/v1/plans/ under the same load; "
        "SQL queries per request vs the same request on a 1-VM project",
    ),
    Bench(
        "reconcile",
        "Reconciliation of 10,000 VMs on one simulator hypervisor",
        "bench/reconcile/run.py",
        quick=["--quick"],
        what="Wall time of one pass (steady, then with drift) vs one listing + a plain SELECT of the VM rows; "
        "hypervisor calls vs one list call",
    ),
    Bench(
        "billing",
        "Billing: metering 10,000 VMs and invoicing 5,000 projects",
        "bench/billing/run.py",
        quick=["--vms", "1000", "--projects", "500"],
        json=False,
        env="billing",
        what="The billing benchmark's own figures, each with its baseline",
    ),
    Bench(
        "batch",
        "Batch request: 1,000 VMs accepted in one call",
        "bench/batch/run.py",
        args=["--vms", "1000", "--singles", "200"],
        quick=["--vms", "200", "--singles", "50"],
        env="batch",
        what="VMs accepted per second by one batch (service and API) vs single requests one after the other",
    ),
    Bench(
        "audit",
        "Audit log appends",
        "bench/audit/run.py",
        quick=["--seconds", "2"],
        json=False,
        env="audit",
        what="The audit benchmark's own figures (read them with the Audit section)",
    ),
    Bench(
        "metrics",
        "Metrics scrape as the operations table grows",
        "bench/metrics/run.py",
        quick=["--sizes", "10000", "--vms", "1000", "--scrapes", "3"],
        json=False,
        env="metrics",
        what="The metrics benchmark's own figures (read them with the Metrics scrape section)",
    ),
    Bench(
        "metrics_ingest",
        "VM metrics: ingesting 10,000 VMs per round, a 30-day chart, storage per VM",
        "bench/metrics_ingest/run.py",
        args=["--vms", "10000", "--rounds", "5", "--chart-vms", "200", "--queries", "200"],
        quick=["--vms", "1000", "--rounds", "3", "--chart-vms", "20", "--queries", "30"],
        json=False,
        env="metrics",
        what="One collection round's wall time and CPU against the 60 s interval, beside a COPY of the same rows; "
        "30-day chart p50/p99 and bytes beside the bare SELECT; bytes per VM beside one row per metric",
    ),
    Bench(
        "chaos",
        "Chaos run (invariants)",
        "bench/chaos/run.py",
        quick=["--quick"],
        what="See the chaos block",
    ),
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI-sized counts for every benchmark")
    parser.add_argument("--only", nargs="+", choices=[b.name for b in BENCHMARKS])
    parser.add_argument("--skip", nargs="+", default=[], choices=[b.name for b in BENCHMARKS])
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed per benchmark")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/BENCHMARKS.md")
    return parser.parse_args(argv)


@dataclass
class Outcome:
    bench: Bench
    status: str  # ok, failed, pending, timeout
    seconds: float = 0.0
    output: str = ""
    result: Result | None = None
    facts: dict = field(default_factory=dict)


def run_one(bench: Bench, args, stack: Stack | None) -> Outcome:
    script = ROOT / bench.script
    facts = machine_facts()
    if stack is not None:
        facts.update(stack.facts())
    if not script.exists():
        return Outcome(bench, "pending", output=f"{bench.script} is not on this branch yet", facts=facts)
    argv = [sys.executable, str(script), *(bench.quick if args.quick else bench.args)]
    json_path = Path(tempfile.mkstemp(prefix=f"bench-{bench.name}-", suffix=".json")[1])
    if bench.json:
        argv += ["--json", str(json_path)]
    if bench.name == "chaos" and not args.no_docs:
        argv.append("--write-docs")
    env = dict(os.environ)
    if bench.env and stack is not None:
        env.update(
            {
                "BENCH_BILLING_DATABASE_URL": stack.postgres.url("cp_billing_bench"),
                "BENCH_BATCH_DATABASE_URL": stack.postgres.url("cp_batch_bench"),
                "BENCH_BROKER_URL": stack.redis.url(0),
                "DATABASE_URL": stack.postgres.url("cp_scratch"),  # audit, metrics: scratch databases beside it
            }
        )
    print(f"\n### {bench.name}: {' '.join(argv[1:])}", flush=True)
    started = time.monotonic()
    lines: list[str] = []
    try:
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        deadline = started + args.timeout
        timer = _Watchdog(proc, deadline)
        timer.start()
        try:
            for line in proc.stdout:
                print(line, end="", flush=True)
                lines.append(line)
            proc.wait()
        except BaseException:  # interrupted: the benchmark stops its own stack on SIGTERM
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(60)
            raise
        timer.cancel()
        status = "timeout" if timer.fired else ("ok" if proc.returncode == 0 else "failed")
    finally:
        seconds = time.monotonic() - started
    result = None
    if bench.json and json_path.exists() and json_path.stat().st_size:
        result = Result.from_dict(json.loads(json_path.read_text()))
    json_path.unlink(missing_ok=True)
    facts["load_average_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return Outcome(bench, status, seconds, "".join(lines), result, facts)


class _Watchdog:
    """Kills a benchmark's process group when it passes its deadline."""

    def __init__(self, proc: subprocess.Popen, deadline: float):
        import threading

        self.proc, self.deadline, self.fired = proc, deadline, False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(1):
            if time.monotonic() > self.deadline and self.proc.poll() is None:
                self.fired = True
                os.killpg(self.proc.pid, signal.SIGTERM)
                if self._stop.wait(20):
                    return
                if self.proc.poll() is None:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                return


def render(outcome: Outcome, command: str) -> str:
    """One benchmark's section: its own block, so ``--only`` refreshes just that one."""
    bench = outcome.bench
    lines = [
        f"### {bench.title}",
        "",
        f"`{command}` ran `{bench.script}`: {outcome.status} in {outcome.seconds:.0f} s; {facts_line(outcome.facts)}.",
        "",
        f"{bench.what}.",
        "",
    ]
    if outcome.status == "pending":
        lines.append(f"Pending: {outcome.output}.")
    elif outcome.result is not None:
        lines += [outcome.result.markdown_table(), "", *[f"- {note}" for note in outcome.result.notes]]
    else:
        lines += ["```", _figures_part(outcome.output).rstrip(), "```"]
    return "\n".join(lines)


def _figures_part(output: str, limit: int = 60) -> str:
    """The end of a benchmark's output (its figures), without progress chatter."""
    kept = [
        line
        for line in output.splitlines()
        if line.strip() and not line.startswith(("[", "### ")) and not LOG_LINE.match(line)
    ]
    return "\n".join(kept[-limit:])


def main(argv=None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    selected = [b for b in BENCHMARKS if (not args.only or b.name in args.only) and b.name not in args.skip]
    command = ".venv/bin/python bench/run_all.py " + " ".join(argv if argv is not None else sys.argv[1:])
    outcomes: list[Outcome] = []
    stack = None
    try:
        if any(b.env for b in selected):
            stack = Stack(database="cp_bench")
            stack.start()
        for bench in selected:
            outcomes.append(run_one(bench, args, stack))
    finally:
        if stack is not None:
            stack.close()
    print("\n\n=== summary")
    for outcome in outcomes:
        print(f"{outcome.bench.name:10} {outcome.status:8} {outcome.seconds:6.0f} s")
        if outcome.result is not None:
            print("   " + outcome.result.table().replace("\n", "\n   "))
    if not args.no_docs:
        for outcome in outcomes:
            if outcome.bench.name != "chaos":  # the chaos run writes its own block
                replace_block(f"bench-{outcome.bench.name}", render(outcome, command.strip()))
        print("docs/BENCHMARKS.md updated")
    return 0 if all(o.status in ("ok", "pending") for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
