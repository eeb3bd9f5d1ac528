"""API latency under 50 concurrent clients, with the SQL queries each request makes.

    .venv/bin/python bench/api/run.py [--vms 1000] [--connections 50] [--duration 10] [--quick]

On a private PostgreSQL + Redis (bench/stack.py) with gunicorn configured as in
the Procfile (``--web-workers 2 --web-threads 4``), ``wrk`` (Debian package
``wrk``; a C load generator, light enough to share two cores with the server)
sends from ``--connections`` keep-alive connections on loopback, authenticated
by a personal access token (``Authorization: Bearer``):

1. listing: GET /api/v1/virtual-machines/?page=N, cycling through every page of
   a project holding ``--vms`` VMs (50 per page);
2. an action: POST /api/v1/virtual-machines/{id}/reboot/, each request on a
   different idle VM (a pool of ``--action-vms``), answered 202 with the
   operation (published to Redis; no worker runs, so it stays pending).

Baseline, same server, same load, same run: GET /api/v1/plans/, the smallest
authenticated API read (token, DRF, one small query). Queries per request are
counted in-process (django CaptureQueriesContext), and compared with the same
request on a project holding one VM: equal counts mean no N+1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.orm import active_vms  # noqa: E402
from bench.report import Result, command_line  # noqa: E402
from bench.stack import Stack, exit_on_sigterm  # noqa: E402

PAGE_SIZE = 50

LUA = r"""
local counter = 0
local paths = { {PATHS} }
local method = "{METHOD}"
wrk.headers["Authorization"] = "Bearer {TOKEN}"
wrk.headers["Accept"] = "application/json"
local threads = {}
local nthreads = {THREADS}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  ok = 0
  other = 0
end

function request()
  local index = (tid + counter * nthreads) % #paths + 1
  counter = counter + 1
  return wrk.format(method, paths[index])
end

function response(status, headers, body)
  if status == {EXPECT} then ok = ok + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local good, bad = 0, 0
  for _, thread in ipairs(threads) do
    good = good + thread:get("ok")
    bad = bad + thread:get("other")
  end
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"expected": %d, "unexpected": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, good, bad,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=1000, help="VMs in the listed project")
    parser.add_argument("--action-vms", type=int, default=4000, help="idle VMs the action requests use (one each)")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10, help="seconds per measurement")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="CI size: 200 VMs, 3 s per measurement")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.vms, args.action_vms, args.duration = min(args.vms, 200), min(args.action_vms, 1500), min(args.duration, 3)
    return args


def seed(args):
    """A lister with ``vms`` VMs, an actor with an idle pool, a user with one VM: (user, API token) by role."""

    from accounts import services as accounts
    from compute.models import Hypervisor, Image, ImageReference, Plan, ProjectQuota

    hv = Hypervisor.objects.create(
        name="api-sim", kind="simulator", queue="api-sim", connection={"state_path": "/nonexistent/sim.sqlite3"}
    )
    plan = Plan.objects.create(name="api", vcpus=1, memory_mib=512, disk_gib=10, requires_approval=False)
    image = Image.objects.create(name="api-img", os_name="Bench")
    ImageReference.objects.create(image=image, hypervisor=hv, ref="tmpl")
    accounts_by_role = {}
    for role, count in (("lister", args.vms), ("actor", args.action_vms), ("single", 1)):
        user = accounts.user_create(email=f"{role}@example.com", password=None)
        project = user.projects.get()
        ProjectQuota.objects.update_or_create(project=project, defaults={"max_vms": 10**6})
        active_vms(
            hypervisor=hv,
            plan=plan,
            image=image,
            owners=[(user, project)],
            count=count,
            name=lambda n, role=role: f"{role}-{n:05d}",
            backend_id=lambda n, role=role: f"sim-{role}-{n}",
        )
        accounts_by_role[role] = (user, accounts.token_create(user=user, name="bench")[1])
    return accounts_by_role


def count_queries(token: str, method: str, path: str) -> tuple[int, int]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        response = getattr(Client(), method)(path, HTTP_ACCEPT="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    return len(ctx.captured_queries), response.status_code


def wrk(stack: Stack, paths: list[str], *, method: str, expect: int, token: str, args, duration: float) -> dict:
    script = (
        LUA.replace("{PATHS}", ", ".join(json.dumps(p) for p in paths))
        .replace("{METHOD}", method)
        .replace("{TOKEN}", token)
        .replace("{THREADS}", str(args.wrk_threads))
        .replace("{EXPECT}", str(expect))
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        command = [
            "wrk",
            "-t",
            str(args.wrk_threads),
            "-c",
            str(args.connections),
            "-d",
            f"{duration:g}s",
            "--timeout",
            "30s",
            "-s",
            handle.name,
            stack.web_url,
        ]
        out = subprocess.run(command, capture_output=True, text=True, timeout=duration + 120)
    finally:
        os.unlink(handle.name)
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            data = json.loads(line[len("WRKJSON ") :])
            data["rate"] = data["requests"] / (data["duration_us"] / 1e6)
            return data
    raise RuntimeError(f"wrk printed no figures:\n{out.stdout}\n{out.stderr}")


def main(argv=None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk (Debian package)", file=sys.stderr)
        return 2
    started = time.monotonic()
    result = Result(name="api", title=f"API under {args.connections} concurrent clients", command=command_line())
    with Stack(database="cp_apibench", keep=args.keep) as stack:
        stack.apply_env()
        stack.manage("migrate", "--noinput")
        import django

        django.setup()
        accounts_by_role = seed(args)
        from compute.models import VirtualMachine

        pages = -(-args.vms // PAGE_SIZE)
        list_paths = [f"/api/v1/virtual-machines/?page={n}" for n in range(1, pages + 1)]
        lister, lister_token = accounts_by_role["lister"]
        single, single_token = accounts_by_role["single"]
        actor, actor_token = accounts_by_role["actor"]
        for token in (lister_token, single_token, actor_token):  # the first use of a token also records it
            count_queries(token, "get", "/api/v1/plans/")
        q_list, status1 = count_queries(lister_token, "get", list_paths[0])
        q_last, _ = count_queries(lister_token, "get", list_paths[-1])
        q_single, _ = count_queries(single_token, "get", "/api/v1/virtual-machines/")
        q_plans, _ = count_queries(lister_token, "get", "/api/v1/plans/")
        pool = list(VirtualMachine.objects.filter(owner=actor).order_by("id").values_list("id", flat=True))
        probe, pool = pool[0], pool[1:]
        q_action, status2 = count_queries(actor_token, "post", f"/api/v1/virtual-machines/{probe}/reboot/")
        single_vm = VirtualMachine.objects.get(owner=single)
        q_action_single, _ = count_queries(single_token, "post", f"/api/v1/virtual-machines/{single_vm.pk}/reboot/")
        if (status1, status2) != (200, 202):
            raise SystemExit(f"unexpected answers in-process: list {status1}, action {status2}")

        stack.start_web(workers=args.web_workers, threads=args.web_threads)
        tokens = {role: token for role, (_, token) in accounts_by_role.items()}
        run = {"method": "GET", "expect": 200, "args": args}
        wrk(stack, ["/api/v1/plans/"], token=tokens["lister"], duration=2, **run)  # warm-up
        baseline = wrk(stack, ["/api/v1/plans/"], token=tokens["lister"], duration=args.duration, **run)
        listing = wrk(stack, list_paths, token=tokens["lister"], duration=args.duration, **run)
        action_paths = [f"/api/v1/virtual-machines/{pk}/reboot/" for pk in pool]
        action = wrk(
            stack, action_paths, method="POST", expect=202, token=tokens["actor"], args=args, duration=args.duration
        )
        from compute.models import Operation

        operations = Operation.objects.filter(vm__owner=actor).count()

    ms = 1000.0
    base = "GET /api/v1/plans/"
    result.add(
        f"list VMs p50 ({args.vms} VMs, {pages} pages)",
        listing["p50_us"] / ms,
        "ms",
        baseline=baseline["p50_us"] / ms,
        baseline_label=f"{base} p50",
    )
    result.add(
        "list VMs p99", listing["p99_us"] / ms, "ms", baseline=baseline["p99_us"] / ms, baseline_label=f"{base} p99"
    )
    result.add("list VMs throughput", listing["rate"], "req/s", baseline=baseline["rate"], baseline_label=base)
    result.add(
        "POST reboot p50", action["p50_us"] / ms, "ms", baseline=baseline["p50_us"] / ms, baseline_label=f"{base} p50"
    )
    result.add(
        "POST reboot p99", action["p99_us"] / ms, "ms", baseline=baseline["p99_us"] / ms, baseline_label=f"{base} p99"
    )
    result.add("POST reboot throughput", action["rate"], "req/s", baseline=baseline["rate"], baseline_label=base)
    result.add("queries: list page 1", q_list, "queries", baseline=q_single, baseline_label="list of a 1-VM project")
    result.add(
        f"queries: list page {pages}", q_last, "queries", baseline=q_single, baseline_label="list of a 1-VM project"
    )
    result.add(
        "queries: POST reboot", q_action, "queries", baseline=q_action_single, baseline_label="same, user with 1 VM"
    )
    result.add("queries: GET /api/v1/plans/", q_plans, "queries")
    result.notes.append(
        f"wrk {args.wrk_threads} threads, {args.connections} connections, {args.duration:g} s per measurement, "
        f"gunicorn {args.web_workers} workers x {args.web_threads} threads (the Procfile's), Bearer token auth"
    )
    result.notes.append(
        f"answers: list {listing['expected']} x 200, {listing['unexpected']} other; reboot {action['expected']} x 202, "
        f"{action['unexpected']} other ({operations} operations created); baseline {baseline['expected']} x 200; "
        f"socket errors {listing['socket_errors'] + action['socket_errors'] + baseline['socket_errors']}"
    )
    result.ok = listing["unexpected"] == 0 and action["unexpected"] == 0
    result.seconds = time.monotonic() - started
    result.print()
    result.write_json(args.json)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
