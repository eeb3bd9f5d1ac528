"""Prometheus metrics at ``/metrics``, computed from the database and the broker
at scrape time.

Web, workers and beat are many processes on many machines; in-process counters
would each see a slice. The database (operations, VMs, heartbeats) and the
broker (queue lengths) are the shared truth, so one collector reads them when
Prometheus scrapes any web process. Every part is timed and fenced: a broken
part reports ``controlplane_metrics_collector_up{collector=...} 0`` and the
rest of the scrape still answers.

Set ``METRICS_TOKEN`` to require ``Authorization: Bearer <token>``.
"""

import hmac
import logging
import time
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu.exceptions import ChannelError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeHistogramMetricFamily, GaugeMetricFamily

logger = logging.getLogger(__name__)

PREFIX = "controlplane"
# Seconds; VM builds take minutes, power actions seconds.
LATENCY_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


def _operations(now):
    from compute.choices import OperationState
    from compute.models import Operation

    by_state = GaugeMetricFamily(
        f"{PREFIX}_operations", "Operations in the database by action and state.", labels=["action", "state"]
    )
    retried = GaugeMetricFamily(
        f"{PREFIX}_operations_retried",
        "Operations that needed more than one attempt, by action and state.",
        labels=["action", "state"],
    )
    retries = CounterMetricFamily(
        f"{PREFIX}_operation_retries", "Attempts beyond the first, summed over all operations.", labels=["action"]
    )
    retries_by_action = defaultdict(int)
    rows = Operation.objects.values("action", "state").annotate(
        total=Count("id"),
        retried=Count("id", filter=Q(attempts__gt=1)),
        extra_attempts=Sum(F("attempts") - 1, filter=Q(attempts__gt=1)),
    )
    for row in rows.order_by():
        by_state.add_metric([row["action"], row["state"]], row["total"])
        retried.add_metric([row["action"], row["state"]], row["retried"])
        retries_by_action[row["action"]] += row["extra_attempts"] or 0
    for action, value in sorted(retries_by_action.items()):
        retries.add_metric([action], value)

    oldest = GaugeMetricFamily(
        f"{PREFIX}_operation_oldest_age_seconds",
        "Age of the oldest pending operation (since created) and running one (since started).",
        labels=["state"],
    )
    for state, field in ((OperationState.PENDING, "created_at"), (OperationState.RUNNING, "started_at")):
        since = Operation.objects.filter(state=state).aggregate(since=Min(field))["since"]
        oldest.add_metric([state], (now - since).total_seconds() if since else 0)
    expired = GaugeMetricFamily(
        f"{PREFIX}_operations_lease_expired",
        "Running operations whose worker lease passed (the reaper should hand them back).",
    )
    expired.add_metric([], Operation.objects.filter(state=OperationState.RUNNING, lease_until__lt=now).count())
    return [by_state, retried, retries, oldest, expired]


def _latency(now):
    from compute.models import Operation

    window = settings.METRICS_LATENCY_WINDOW_SECONDS
    family = GaugeHistogramMetricFamily(
        f"{PREFIX}_operation_duration_seconds",
        f"Run time (finished - started) of operations finished in the last {window} s, by action and state.",
        labels=["action", "state"],
    )
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    buckets = {
        f"le_{i}": Count("id", filter=Q(duration__lte=timedelta(seconds=bound)))
        for i, bound in enumerate(LATENCY_BUCKETS)
    }
    rows = (
        Operation.objects.filter(finished_at__gte=now - timedelta(seconds=window), started_at__isnull=False)
        .annotate(duration=duration)
        .values("action", "state")
        .annotate(count=Count("id"), total=Sum("duration"), **buckets)
        .order_by()
    )
    for row in rows:
        pairs = [(_le(b), row[f"le_{i}"]) for i, b in enumerate(LATENCY_BUCKETS)] + [("+Inf", row["count"])]
        total = row["total"].total_seconds() if row["total"] else 0.0
        family.add_metric([row["action"], row["state"]], pairs, total)
    return [family]


def _le(bound) -> str:
    return str(float(bound))


def _vms(now):
    from compute.choices import VMStatus
    from compute.models import VirtualMachine

    by_status = GaugeMetricFamily(f"{PREFIX}_vms", "VMs by hypervisor and status.", labels=["hypervisor", "status"])
    drifted = GaugeMetricFamily(
        f"{PREFIX}_vms_drifted",
        "Live VMs the reconciler did not find on their hypervisor: missing (in grace) or lost.",
        labels=["hypervisor", "kind"],
    )
    rows = (
        VirtualMachine.objects.values("hypervisor__name", "status")
        .annotate(
            total=Count("id"),
            missing=Count("id", filter=Q(missing_since__isnull=False, lost_at__isnull=True)),
            lost=Count("id", filter=Q(lost_at__isnull=False)),
        )
        .order_by()
    )
    drift = defaultdict(lambda: {"missing": 0, "lost": 0})
    for row in rows:
        hypervisor = row["hypervisor__name"]
        by_status.add_metric([hypervisor, row["status"]], row["total"])
        if row["status"] != VMStatus.DELETED:
            drift[hypervisor]["missing"] += row["missing"]
            drift[hypervisor]["lost"] += row["lost"]
    for hypervisor, kinds in sorted(drift.items()):
        for kind, value in kinds.items():
            drifted.add_metric([hypervisor, kind], value)
    return [by_status, drifted]


def _workers(now):
    from compute.models import Hypervisor
    from workers.models import WorkerHeartbeat

    stale_after = settings.ENGINE["WORKER_STALE_SECONDS"]
    age = GaugeMetricFamily(
        f"{PREFIX}_worker_heartbeat_age_seconds",
        "Seconds since each running worker's last heartbeat (stopped workers are left out).",
        labels=["worker", "queues"],
    )
    alive = GaugeMetricFamily(f"{PREFIX}_workers_alive", f"Workers whose heartbeat is younger than {stale_after} s.")
    per_queue = GaugeMetricFamily(
        f"{PREFIX}_queue_workers",
        "Alive workers serving each queue (0 for a hypervisor's queue: its operations wait).",
        labels=["queue"],
    )
    serving = {settings.CELERY_DEFAULT_QUEUE: 0}
    serving.update({queue: 0 for queue in Hypervisor.objects.values_list("queue", flat=True).distinct()})
    count = 0
    for hostname, queues, last_seen in WorkerHeartbeat.objects.filter(stopped_at__isnull=True).values_list(
        "hostname", "queues", "last_seen"
    ):
        seconds = max((now - last_seen).total_seconds(), 0.0)
        age.add_metric([hostname, ",".join(queues)], seconds)
        if seconds <= stale_after:
            count += 1
            for queue in queues:
                serving[queue] = serving.get(queue, 0) + 1
    alive.add_metric([], count)
    for queue, value in sorted(serving.items()):
        per_queue.add_metric([queue], value)
    return [age, alive, per_queue]


def known_queues() -> list[str]:
    from compute.models import Hypervisor

    queues = set(Hypervisor.objects.values_list("queue", flat=True))
    return [settings.CELERY_DEFAULT_QUEUE, *sorted(queues - {settings.CELERY_DEFAULT_QUEUE})]


def _queues(now):
    from controlplane.celery import app

    depth = GaugeMetricFamily(
        f"{PREFIX}_queue_depth",
        "Messages waiting in each broker queue (control + every hypervisor queue).",
        labels=["queue"],
    )
    unacked = GaugeMetricFamily(
        f"{PREFIX}_broker_unacked_messages",
        "Messages delivered to workers and not yet acknowledged (running, reserved, or waiting for a countdown).",
    )
    families = [depth]
    with app.connection_for_read(connect_timeout=3) as conn:
        conn.ensure_connection(max_retries=1)
        channel = conn.channel()
        try:
            for queue in known_queues():
                try:
                    _, size, _ = channel.queue_declare(queue=queue, passive=True)
                except ChannelError:  # never declared: nobody sent to it yet
                    size = 0
                    channel.close()
                    channel = conn.channel()
                depth.add_metric([queue], size)
            client = getattr(channel, "client", None)
            unacked_key = getattr(channel, "unacked_key", None)
            if client is not None and unacked_key:  # Redis transport
                unacked.add_metric([], client.hlen(unacked_key))
                families.append(unacked)
        finally:
            channel.close()
    return families


COLLECTORS = {
    "operations": _operations,
    "latency": _latency,
    "vms": _vms,
    "workers": _workers,
    "queues": _queues,
}


class ControlPlaneCollector:
    def collect(self):
        now = timezone.now()
        up = GaugeMetricFamily(
            f"{PREFIX}_metrics_collector_up", "1 when this part of the scrape worked.", labels=["collector"]
        )
        took = GaugeMetricFamily(
            f"{PREFIX}_metrics_collector_duration_seconds", "Time this part of the scrape took.", labels=["collector"]
        )
        for name, collect in COLLECTORS.items():
            started = time.monotonic()
            try:
                families = collect(now)
            except Exception:
                logger.exception("metrics collector %s failed", name)
                up.add_metric([name], 0)
            else:
                up.add_metric([name], 1)
                yield from families
            took.add_metric([name], time.monotonic() - started)
        yield up
        yield took


REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(ControlPlaneCollector())


def _authorized(request) -> bool:
    token = settings.METRICS_TOKEN
    if not token:
        return True
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


@never_cache
@require_GET
def metrics_view(request):
    if not _authorized(request):
        response = HttpResponse("metrics need a bearer token\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
