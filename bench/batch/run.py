"""Batch request acceptance on PostgreSQL + Redis: how fast N VMs are accepted.

    .venv/bin/python bench/batch/run.py [--vms 1000] [--singles 200] [--json out.json]

Prints, beside a baseline measured in the same run on the same database and broker:

1. one batch of ``--vms`` VMs through the service (``vm_batch_create``: quota for all,
   N requests, N VMs, N timeline events, N create Operations published on commit,
   3N audit events) and through the API (``POST /api/v1/vm-batches/``, in process):
   VMs accepted per second and SQL statements per VM; and once more on a hypervisor
   with a dual-stack IP pool (each VM also gets an IPv4 and an IPv6 address);
2. the baseline: ``--singles`` single requests, one after the other
   (``vm_request_create``, auto-approved: the same work for one VM per call), creates/s;
3. floors: ``--vms`` bare ``send_task`` publishes to the same broker and queue (each
   VM's create operation is published once, on commit), one after the other, and the
   same publishes on one producer in pipelined round trips (kombu's ``Producer.batch``).

No worker runs: the operations stay pending (acceptance is what is measured; building
them is the engine benchmark's). Uses its own database (BENCH_BATCH_DATABASE_URL,
default .../cp_batch_bench, dropped and created at start) and broker
(BENCH_BROKER_URL, default redis://127.0.0.1:6379/14); the queue it publishes to is
deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from bench.report import Result, command_line  # noqa: E402
from bench.stack import recreate_database  # noqa: E402

DB_URL = os.environ.get("BENCH_BATCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cp_batch_bench")
BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14")
QUEUE = "bench-batch"
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "controlplane.settings",
        "DATABASE_URL": DB_URL,
        "CELERY_BROKER_URL": BROKER,
        "LOG_LEVEL": "WARNING",
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
    }
)


def setup(vms: int):
    """A free plan (no billing profile or wallet needed), a simulator, one user with room."""
    from accounts import services as accounts
    from compute.models import Hypervisor, Image, ImageReference, Plan, ProjectQuota

    hv = Hypervisor.objects.create(
        name="bench-batch", kind="simulator", queue=QUEUE, connection={"latency": 0}, max_concurrent_operations=10**6
    )
    plan = Plan.objects.create(
        name="lab", vcpus=1, memory_mib=512, disk_gib=10, requires_approval=False, price_hourly_running=0,
        price_hourly_stopped=0,
    )  # fmt: skip
    image = Image.objects.create(name="lab-img", os_name="Lab")
    ImageReference.objects.create(image=image, hypervisor=hv, ref="tmpl-lab")
    user = accounts.user_create(email="teacher@example.com", password=None)
    project = user.projects.get()
    ProjectQuota.objects.update_or_create(
        project=project,
        defaults={"max_vms": 10**6, "max_vcpus": 10**6, "max_memory_mib": 10**9, "max_disk_gib": 10**9},
    )
    return hv, plan, image, user, project


def setup_ip_pool(image):
    """A second hypervisor on the same queue with a dual-stack pool big enough for the batch."""
    from compute.models import Hypervisor, ImageReference, IPPool

    hv = Hypervisor.objects.create(
        name="bench-batch-ip", kind="simulator", queue=QUEUE, connection={"latency": 0}, max_concurrent_operations=10**6
    )
    ImageReference.objects.create(image=image, hypervisor=hv, ref="tmpl-lab")
    IPPool.objects.create(
        name="bench-pool", hypervisor=hv, ipv4_prefix="10.20.0.0/16", ipv4_gateway="10.20.0.1",
        ipv6_prefix="2001:db8:20::/64", ipv6_gateway="2001:db8:20::1",
    )  # fmt: skip
    return hv


def timed(call):
    from bench.orm import count_queries

    with count_queries() as queries:
        start = time.perf_counter()
        value = call()
        seconds = time.perf_counter() - start
    return value, seconds, len(queries.captured_queries)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=1000, help="VMs in the batch")
    parser.add_argument("--singles", type=int, default=200, help="single requests for the baseline")
    parser.add_argument("--json", help="write the figures as JSON here (bench/run_all.py)")
    args = parser.parse_args()

    recreate_database(DB_URL)
    import django

    django.setup()
    import redis
    from django.core.management import call_command
    from rest_framework.test import APIClient

    from compute import services
    from compute.models import IPAllocation, Operation

    call_command("migrate", verbosity=0)
    hv, plan, image, user, project = setup(args.vms)
    result = Result("batch", "Batch request acceptance", command_line())
    try:
        # Baseline: single requests, one call each
        def singles():
            for n in range(args.singles):
                services.vm_request_create(
                    user=user, project=project, plan=plan, image=image, hypervisor=hv, name=f"single-{n}"
                )

        _, single_s, single_q = timed(singles)
        single_rate = args.singles / single_s

        def batch():
            return services.vm_batch_create(
                user=user, project=project, plan=plan, image=image, hypervisor=hv, name_pattern="lab-{n}",
                count=args.vms,
            )  # fmt: skip

        created, batch_s, batch_q = timed(batch)
        assert Operation.objects.filter(vm__request__batch=created, state="pending").count() == args.vms

        client = APIClient()
        client.force_authenticate(user)
        body = {
            "project": project.slug, "plan": plan.pk, "image": image.pk, "hypervisor": hv.pk,
            "name_pattern": "api-{n}", "count": args.vms,
        }  # fmt: skip
        response, api_s, api_q = timed(lambda: client.post("/api/v1/vm-batches/", body, format="json"))
        assert response.status_code == 201, response.content
        assert response.json()["progress"]["building"] == args.vms

        ip_hv = setup_ip_pool(image)

        def batch_with_addresses():
            return services.vm_batch_create(
                user=user, project=project, plan=plan, image=image, hypervisor=ip_hv, name_pattern="ip-{n}",
                count=args.vms,
            )  # fmt: skip

        created, ip_s, ip_q = timed(batch_with_addresses)
        assert IPAllocation.objects.filter(vm__request__batch=created).count() == 2 * args.vms

        def publishes():  # the floor of the on-commit publishing: bare send_task, same broker and queue
            from controlplane.celery import app

            for _ in range(args.vms):
                app.send_task("execute_operation", args=[0], queue=QUEUE, retry=False)

        _, publish_s, _ = timed(publishes)

        def pipelined():  # the same on one producer, in pipelined round trips
            from controlplane.celery import app

            with app.producer_or_acquire() as producer, producer.batch():
                for _ in range(args.vms):
                    app.send_task("execute_operation", args=[0], queue=QUEUE, retry=False, producer=producer)

        _, pipelined_s, _ = timed(pipelined)

        unit = "VMs/s"
        result.add(
            f"accept a batch of {args.vms} (service)", args.vms / batch_s, unit, single_rate,
            "single requests, one after the other (creates/s)",
        )  # fmt: skip
        result.add(
            f"accept a batch of {args.vms} (POST /api/v1/vm-batches/)", args.vms / api_s, unit, single_rate,
            "single requests, one after the other (creates/s)",
        )  # fmt: skip
        result.add(
            f"accept a batch of {args.vms} with an IP pool (service)", args.vms / ip_s, unit, single_rate,
            "single requests, one after the other (creates/s)",
        )  # fmt: skip
        result.add(
            "SQL statements per VM (batch, service)", batch_q / args.vms, "", single_q / args.singles,
            "statements per single request",
        )  # fmt: skip
        result.add(
            "SQL statements per VM (batch with an IP pool)", ip_q / args.vms, "", single_q / args.singles,
            "statements per single request (no pool)",
        )  # fmt: skip
        result.add(
            f"accept a batch of {args.vms} (service)", args.vms / batch_s, unit, args.vms / publish_s,
            "bare Celery publishes/s (send_task), one after the other",
        )  # fmt: skip
        result.add(
            f"accept a batch of {args.vms} (service)", args.vms / batch_s, unit, args.vms / pipelined_s,
            "Celery publishes/s on one producer, pipelined (the batch's floor)",
        )  # fmt: skip
        result.notes.append(
            f"batch: {batch_s:.2f} s for {args.vms} VMs ({args.vms} create operations published on commit); "
            f"API: {api_s:.2f} s; with an IP pool: {ip_s:.2f} s; singles: {single_s:.2f} s for {args.singles}; "
            f"{args.vms} bare publishes: {publish_s:.2f} s, pipelined: {pipelined_s:.2f} s"
        )
    finally:
        client = redis.Redis.from_url(BROKER)
        client.delete(QUEUE)
    result.print()
    if args.json:
        result.write_json(args.json)


if __name__ == "__main__":
    main()
