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
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu.exceptions import ChannelError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily

from billing import selectors as billing_selectors
from compute import selectors as compute_selectors
from compute.choices import ACTIVE_OPERATION_STATES, VMStatus
from compute.selectors_capacity import RESOURCES, hypervisor_capacity_list
from controlplane.celery import app
from workers import selectors as workers_selectors

from .metrics_vms import vm_series

logger = logging.getLogger(__name__)

PREFIX = "controlplane"
# Seconds; VM builds take minutes, power actions seconds.
LATENCY_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
# Operations finished in the window are looked up among those created at most this
# long before it (keeps the scrape on the created_at index; see _operations).
OPERATION_MAX_AGE = timedelta(days=7)


def _operations(now):
    """Active operations (all of them) and those finished within the window.

    Nothing here scans the whole table: active rows come from the state index,
    finished ones from the created_at index, bounded by ``OPERATION_MAX_AGE``
    (an operation finished in the window but created longer ago than that is
    left out; operations take minutes).
    """
    window = settings.METRICS_LATENCY_WINDOW_SECONDS
    since = now - timedelta(seconds=window)
    by_state = GaugeMetricFamily(
        f"{PREFIX}_operations",
        f"Operations by action and state: every pending and running one; those finished in the last {window} s.",
        labels=["action", "state"],
    )
    retried = GaugeMetricFamily(
        f"{PREFIX}_operations_retried",
        "Of those, the operations that needed more than one attempt.",
        labels=["action", "state"],
    )
    attempts = GaugeMetricFamily(
        f"{PREFIX}_operation_extra_attempts",
        "Of those, the attempts beyond the first, summed (retries).",
        labels=["action", "state"],
    )
    latency = GaugeHistogramMetricFamily(
        f"{PREFIX}_operation_duration_seconds",
        f"Run time (finished - started) of operations finished in the last {window} s.",
        labels=["action", "state"],
    )
    rows = compute_selectors.operation_stats(
        finished_since=since, created_since=since - OPERATION_MAX_AGE, latency_bounds=LATENCY_BUCKETS
    )
    for row in rows:
        labels = [row["action"], row["state"]]
        by_state.add_metric(labels, row["total"])
        retried.add_metric(labels, row["retried"])
        attempts.add_metric(labels, row["extra"] or 0)
        if row["timed"] and row["state"] not in ACTIVE_OPERATION_STATES:
            pairs = [(_le(b), n) for b, n in zip(LATENCY_BUCKETS, row["le"], strict=True)] + [("+Inf", row["timed"])]
            latency.add_metric(labels, pairs, row["seconds"].total_seconds())

    oldest = GaugeMetricFamily(
        f"{PREFIX}_operation_oldest_age_seconds",
        "Age of the oldest pending operation (since created) and running one (since started).",
        labels=["state"],
    )
    for state, oldest_at in compute_selectors.operation_oldest().items():
        oldest.add_metric([state], (now - oldest_at).total_seconds() if oldest_at else 0)
    expired = GaugeMetricFamily(
        f"{PREFIX}_operations_lease_expired",
        "Running operations whose worker lease passed (the reaper should hand them back).",
    )
    expired.add_metric([], compute_selectors.operation_lease_expired_count(now=now))
    return [by_state, retried, attempts, latency, oldest, expired]


def _le(bound) -> str:
    return str(float(bound))


def _vms(now):
    by_status = GaugeMetricFamily(f"{PREFIX}_vms", "VMs by hypervisor and status.", labels=["hypervisor", "status"])
    drifted = GaugeMetricFamily(
        f"{PREFIX}_vms_drifted",
        "Live VMs the reconciler did not find on their hypervisor: missing (in grace) or lost.",
        labels=["hypervisor", "kind"],
    )
    rows = compute_selectors.vm_counts_by_hypervisor()
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


def _capacity(now):
    """Per hypervisor: allocated, declared capacity and used now; Prometheus keeps the trend."""
    allocated = GaugeMetricFamily(
        f"{PREFIX}_hypervisor_allocated",
        "Allocated on a hypervisor: the plans of its live VMs (vcpus, memory_mib, disk_gib).",
        labels=["hypervisor", "resource"],
    )
    capacity = GaugeMetricFamily(
        f"{PREFIX}_hypervisor_capacity",
        "Capacity an operator declared on a hypervisor (0: not limited).",
        labels=["hypervisor", "resource"],
    )
    used = GaugeMetricFamily(
        f"{PREFIX}_hypervisor_used",
        "What a hypervisor's VMs use by their latest samples (vcpus busy, memory_mib in use); absent without samples.",
        labels=["hypervisor", "resource"],
    )
    pending = GaugeMetricFamily(
        f"{PREFIX}_hypervisor_pending_requests", "VM requests waiting for a hypervisor.", labels=["hypervisor"]
    )
    for row in hypervisor_capacity_list():
        name = row.hypervisor.name
        for resource, _label in RESOURCES:
            allocated.add_metric([name, resource], row.allocated.get(resource, 0))
            capacity.add_metric([name, resource], row.capacity.get(resource) or 0)
        if row.used_vcpus is not None:
            used.add_metric([name, "vcpus"], row.used_vcpus)
        if row.used_memory_mib is not None:
            used.add_metric([name, "memory_mib"], row.used_memory_mib)
        pending.add_metric([name], row.pending_requests)
    return [allocated, capacity, used, pending]


def _workers(now):
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
    serving = {settings.CELERY_DEFAULT_QUEUE: 0, settings.HOUSEKEEPING_QUEUE: 0}
    serving.update({queue: 0 for queue in compute_selectors.hypervisor_queues(include_disabled=True)})
    count = 0
    for hostname, queues, last_seen in workers_selectors.worker_heartbeats_running():
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
    fixed = [settings.CELERY_DEFAULT_QUEUE, settings.HOUSEKEEPING_QUEUE]
    queues = set(compute_selectors.hypervisor_queues(include_disabled=True))
    return [*fixed, *sorted(queues - set(fixed))]


def _queues(now):
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


def _billing(now):
    """Wallet debits (negative ledger entries) in the window, by kind; the created_at index."""
    window = settings.METRICS_LATENCY_WINDOW_SECONDS
    count = GaugeMetricFamily(
        f"{PREFIX}_wallet_debits", f"Wallet debits in the last {window} s, by kind.", labels=["kind"]
    )
    amount = GaugeMetricFamily(
        f"{PREFIX}_wallet_debited_inr", f"Rupees debited from wallets in the last {window} s, by kind.", labels=["kind"]
    )
    for row in billing_selectors.ledger_debits_since(since=now - timedelta(seconds=window)):
        count.add_metric([row["kind"]], row["n"])
        amount.add_metric([row["kind"]], float(-row["total"]))
    return [count, amount]


COLLECTORS = {
    "operations": _operations,
    "vms": _vms,
    "capacity": _capacity,
    "workers": _workers,
    "queues": _queues,
    "billing": _billing,
    "vm_metrics": vm_series,
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
