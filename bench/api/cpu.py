"""CPU time per API request in one process (issue 25): the VM list against GET /api/v1/plans/.

    .venv/bin/python bench/api/cpu.py [--requests 300] [--rounds 2] [--vms 1000] [--profile list]

Against the database in DATABASE_URL (migrated; the lister's project and its VMs are created on
the first run and reused), through django.test.Client with a personal access token, as the
benchmark's wrk clients send them. Each round times ``--requests`` list pages (cycling through
every page, 50 VMs each) and as many GET /api/v1/plans/, alternately in blocks, with
``time.process_time``: the CPU this process spent, which other work on the machine disturbs far
less than wall time (the database's own CPU is not in it). ``--profile list`` (or ``plans``)
prints cProfile's top functions over the requests instead.

Compare two versions of the code by running this script from each checkout against the same
database, alternately: only figures from the same run (same load) compare."""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

LISTER = "lister@example.com"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="requests of each kind per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--vms", type=int, default=1000, help="VMs in the listed project (created once)")
    parser.add_argument("--profile", choices=("list", "plans"), default=None)
    parser.add_argument(
        "--callees", default=None, help="with --profile: the functions matching this regex and their callees"
    )
    return parser.parse_args(argv)


def lister_token(vms: int) -> tuple[str, int]:
    """(token, pages): bench/api/run.py's lister, with ``vms`` VMs, created on the first run."""
    from types import SimpleNamespace

    from accounts import services as accounts
    from accounts.models import AccessToken, User
    from bench.api.run import seed
    from compute.models import VirtualMachine

    if not User.objects.filter(email=LISTER).exists():
        seed(SimpleNamespace(vms=vms, action_vms=1))
    user = User.objects.get(email=LISTER)
    count = VirtualMachine.objects.filter(project__memberships__user=user).count()
    AccessToken.objects.filter(user=user).delete()  # one token per run, never MAX_ACTIVE_TOKENS
    return accounts.token_create(user=user, name="cpu")[1], -(-count // 50)


def timed(client, paths: list[str], token: str) -> float:
    """CPU milliseconds per request over ``paths``."""
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_ACCEPT": "application/json"}
    start = time.process_time()
    for path in paths:
        response = client.get(path, **headers)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.content[:300]!r}")
    return (time.process_time() - start) * 1000 / len(paths)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    os.environ.setdefault("API_THROTTLE_USER", "1000000/min")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.test import Client

    token, pages = lister_token(args.vms)
    client = Client()
    list_paths = [f"/api/v1/virtual-machines/?page={n % pages + 1}" for n in range(args.requests)]
    plan_paths = ["/api/v1/plans/"] * args.requests
    timed(client, list_paths[:20] + plan_paths[:20], token)  # warm-up: imports, URL resolver, connection
    if args.profile:
        profiler = cProfile.Profile(time.process_time)  # CPU, not wall time
        profiler.enable()
        timed(client, list_paths if args.profile == "list" else plan_paths, token)
        profiler.disable()
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(30)
        if args.callees:
            stats.print_callees(args.callees)
        return 0
    for n in range(args.rounds):
        listing, plans = 0.0, 0.0
        for block in range(0, args.requests, 50):  # alternate in blocks: load changes hit both alike
            listing += timed(client, list_paths[block : block + 50], token) * len(list_paths[block : block + 50])
            plans += timed(client, plan_paths[block : block + 50], token) * len(plan_paths[block : block + 50])
        listing, plans = listing / args.requests, plans / args.requests
        print(
            f"round {n + 1}: list {listing:.2f} ms CPU/request, plans {plans:.2f} ms, "
            f"list/plans CPU {listing / plans:.2f}x (rate ratio {plans / listing:.2f}x); "
            f"{args.requests} each, {pages} pages, load {os.getloadavg()[0]:.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
