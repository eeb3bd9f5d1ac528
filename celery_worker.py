#!/usr/bin/env python
"""Start a Celery worker with the project's settings.

    python celery_worker.py --queues control,hv-pve-fra1

``--queues auto`` (the default) serves the control and housekeeping queues and
the queue of every enabled hypervisor in the database: right for a single machine. In a
fleet, each systemd unit names its queue (controlplane-worker@<queue>).
"""

import argparse
import os
import socket
import sys


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--queues",
        "-Q",
        default=os.environ.get("WORKER_QUEUES", "auto"),
        help="comma-separated queues, or 'auto' (default)",
    )
    parser.add_argument("--concurrency", "-c", type=int, default=int(os.environ.get("WORKER_CONCURRENCY", "4")))
    parser.add_argument(
        "--pool", default=os.environ.get("WORKER_POOL", "prefork"), choices=["prefork", "threads", "solo"]
    )
    parser.add_argument("--hostname", "-n", default=None)
    parser.add_argument("--loglevel", "-l", default=os.environ.get("LOG_LEVEL", "INFO"))
    return parser.parse_args(argv)


def resolve_queues(spec: str) -> list[str]:
    # Django and the apps are imported only after main() has run django.setup().
    from django.conf import settings

    if spec != "auto":
        return [q.strip() for q in spec.split(",") if q.strip()]
    from compute.selectors import hypervisor_queues

    return [settings.CELERY_DEFAULT_QUEUE, settings.HOUSEKEEPING_QUEUE, *hypervisor_queues()]


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    import django  # settings module chosen above, then set up before any app import

    django.setup()
    from celery.bin.celery import celery

    queues = resolve_queues(args.queues)
    hostname = args.hostname or f"{'+'.join(queues)[:60]}@{socket.gethostname()}"
    # celery's own command, returning its status: app.worker_main() drops it, so a worker stopped by an
    # error ("Unrecoverable error", e.g. after a Redis restart) would exit 0 and look like a clean stop.
    return celery.main(
        args=[
            "--app",
            "controlplane.celery:app",
            "worker",
            "--queues",
            ",".join(queues),
            "--concurrency",
            str(args.concurrency),
            "--pool",
            args.pool,
            "--hostname",
            hostname,
            "--loglevel",
            args.loglevel,
            "--without-mingle",
            "--without-gossip",
        ],
        standalone_mode=False,
    )


if __name__ == "__main__":
    sys.exit(main())
