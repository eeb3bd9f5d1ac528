"""The Celery application, configured for at-least-once delivery.

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged
  only after its task returned; a worker killed mid-task leaves it to be
  redelivered. Tasks are therefore written to be safe to run twice (the
  operation engine claims work with a compare-and-swap).
- prefetch multiplier 1: a worker holds at most one message per slot beyond
  what it is running, so a dead worker strands little.
- soft/hard time limits and an explicit Redis ``visibility_timeout`` that is
  larger than any task run and any countdown we schedule.
- housekeeping in two lanes: relay and reaper (quick, never wait on a row lock) on the
  control queue; reconciliation and billing jobs (slow: hypervisor listings, every
  project) on the housekeeping queue, served by their own worker, so a slow kind never
  takes the relay's and reaper's slots. A periodic task not started within its interval
  expires instead of piling up behind a stuck one.
- every task runs with its role's PostgreSQL timeouts (controlplane/dbroles.py) on a
  connection reused across tasks (Django's CONN_MAX_AGE and health checks decide when
  it is replaced, as for web requests).
"""

import os

from celery import Celery
from celery.signals import task_prerun
from django.conf import settings
from django.db import close_old_connections

from controlplane import dbroles, sentinel

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

app = Celery("controlplane")

# How the product publishes its tasks: no broker retry loop in a request (a publish that fails is
# re-published by a relay from the outbox rows) and no result kept, since nobody waits for a
# return value (the rows are the state). With a result backend configured (the tests' and
# benchmarks' settings) Celery would otherwise subscribe the publisher to each task's result
# channel, one more Redis round trip per message and a subscription nobody ends, and the worker
# would store each return value.
FIRE_AND_FORGET = {"retry": False, "ignore_result": True}


def _transport_options(broker_url: str) -> dict:
    if broker_url.startswith("filesystem://"):
        folder = settings.BROKER_DIR
        for sub in ("queue", "processed"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
        }
    options = {"visibility_timeout": settings.CELERY_VISIBILITY_TIMEOUT}
    if sentinel.is_sentinel_url(broker_url):  # Redis Sentinel: ask it which server is the master
        options.update(
            sentinel.broker_transport_options(
                master_name=settings.REDIS_SENTINEL_MASTER, sentinel_password=settings.REDIS_SENTINEL_PASSWORD
            )
        )
    return options


def configure(celery_app: Celery) -> None:
    broker_url = settings.CELERY_BROKER_URL
    filesystem = broker_url.startswith("filesystem://")
    celery_app.conf.update(
        broker_url=broker_url,
        result_backend=settings.CELERY_RESULT_BACKEND,
        broker_transport_options=_transport_options(broker_url),
        result_backend_transport_options={"visibility_timeout": settings.CELERY_VISIBILITY_TIMEOUT},
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
        task_time_limit=settings.CELERY_TASK_TIME_LIMIT,
        task_default_queue=settings.CELERY_DEFAULT_QUEUE,
        task_routes={name: {"queue": settings.HOUSEKEEPING_QUEUE} for name in SLOW_HOUSEKEEPING},
        task_ignore_result=settings.CELERY_RESULT_BACKEND is None,
        result_expires=3600,
        timezone="UTC",
        enable_utc=True,
        # The filesystem transport cannot broadcast; remote control needs it.
        worker_enable_remote_control=not filesystem,
        worker_send_task_events=not filesystem,
        task_send_sent_event=not filesystem,
        worker_hijack_root_logger=False,
        beat_schedule=beat_schedule(),
        # Only the holder of a Redis lock sends periodic tasks (controlplane/beat.py).
        beat_scheduler="controlplane.beat:SingletonScheduler",
    )


# Periodic tasks that may take long; routed to settings.HOUSEKEEPING_QUEUE.
SLOW_HOUSEKEEPING = (
    "reconcile_hypervisors",
    "charge_usage",
    "issue_monthly_invoices",
    "relay_reverse_dns",  # and apply_reverse_dns, published there by compute/dispatch.py: they wait on PowerDNS
)


def beat_schedule() -> dict:
    engine = settings.ENGINE
    schedule = {
        "relay-pending-operations": {
            "task": "relay_pending_operations",
            "schedule": float(engine["RELAY_INTERVAL_SECONDS"]),
        },
        "reap-expired-operations": {
            "task": "reap_expired_operations",
            "schedule": float(engine["REAPER_INTERVAL_SECONDS"]),
        },
        "reconcile-hypervisors": {
            "task": "reconcile_hypervisors",
            "schedule": float(engine["RECONCILE_INTERVAL_SECONDS"]),
        },
    }
    schedule.update(getattr(settings, "EXTRA_BEAT_SCHEDULE", {}))
    for entry in schedule.values():  # not started within one interval: dropped, the next one comes
        entry.setdefault("options", {}).setdefault("expires", entry["schedule"])
    return schedule


@task_prerun.connect
def _database_role(task=None, **kwargs):
    # Django's own rule, as at the start of a web request: close the connection if it is past
    # CONN_MAX_AGE or broke (a PostgreSQL restart); with CONN_HEALTH_CHECKS the next query
    # first checks it is alive. Otherwise the connection is reused across tasks.
    close_old_connections()
    dbroles.use_role(dbroles.role_for_task(task.name))


configure(app)
# Celery's Django fix-up closes the database connection before and after EVERY task unless
# told to reuse it: a new connection (TCP, authentication, the role's SETs: two more commits)
# for each task cost more than the operation's own work (issue 25; bench/engine/profile.py).
# Reuse for up to this many tasks; _database_role above applies Django's age and health rules.
app.conf.update(CELERY_DB_REUSE_MAX=settings.CELERY_DB_REUSE_MAX)
app.autodiscover_tasks(["workers", "billing", "audit", "notifications"])
