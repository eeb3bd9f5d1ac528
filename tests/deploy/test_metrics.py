"""/metrics: the families operators alert on, computed from the database and the broker."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from compute.models import Operation, VirtualMachine
from controlplane import metrics
from workers.models import WorkerHeartbeat


def scrape(client, **headers) -> dict:
    """{(sample name, frozenset(labels)): value} of one scrape."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
def fleet(user, project, plan, image, simulator, broker):
    """One hypervisor with VMs in every drift state, operations in every state, workers, queued messages."""
    from controlplane.celery import app

    now = timezone.now()

    def vm(name, **fields):
        return VirtualMachine.objects.create(
            project=project, owner=user, name=name, plan=plan, image=image, hypervisor=simulator, **fields
        )

    healthy = vm("healthy", status="active")
    vm("missing", status="active", missing_since=now - timedelta(seconds=30))
    vm("lost", status="stopped", missing_since=now - timedelta(hours=1), lost_at=now - timedelta(minutes=5))
    vm("gone", status="deleted", missing_since=now, lost_at=now)  # deleted: not drift

    def op(action, state, **fields):
        return Operation.objects.create(project=project, hypervisor=simulator, action=action, state=state, **fields)

    def ago(seconds):
        return now - timedelta(seconds=seconds)

    op("create", "succeeded", attempts=3, started_at=ago(50), finished_at=ago(8))
    op("create", "succeeded", attempts=1, started_at=ago(4), finished_at=ago(1))
    op("stop", "failed", attempts=5, started_at=ago(20), finished_at=ago(19))
    old = op("create", "succeeded", started_at=now - timedelta(days=2), finished_at=now - timedelta(days=2))
    pending = op("start", "pending", vm=healthy)
    Operation.objects.filter(pk=pending.pk).update(created_at=now - timedelta(seconds=120))
    op("reboot", "running", attempts=2, started_at=now - timedelta(seconds=90), lease_until=now - timedelta(seconds=5))
    assert old.pk

    beat = {"pid": 1, "started_at": now - timedelta(hours=1)}
    WorkerHeartbeat.objects.create(hostname="fresh@a", queues=["control", simulator.queue], last_seen=now, **beat)
    WorkerHeartbeat.objects.create(hostname="stale@b", queues=["control"], last_seen=now - timedelta(hours=1), **beat)
    WorkerHeartbeat.objects.create(
        hostname="gone@c", queues=["control"], last_seen=now - timedelta(hours=2), stopped_at=now, **beat
    )

    simulator.queue = f"deploy-metrics-{simulator.pk}"
    simulator.save()
    for _ in range(3):
        app.send_task("ping", queue=simulator.queue)
    yield simulator
    broker.delete(simulator.queue)


def test_metrics_expose_operations_latency_retries_drift_workers_and_queues(client, fleet, broker):
    samples = scrape(client)
    hv = fleet.name

    # Every active operation; finished ones from the last hour only (not the one from two days ago)
    assert value(samples, "controlplane_operations", action="create", state="succeeded") == 2
    assert value(samples, "controlplane_operations", action="stop", state="failed") == 1
    assert value(samples, "controlplane_operations", action="start", state="pending") == 1
    assert value(samples, "controlplane_operations", action="reboot", state="running") == 1
    assert value(samples, "controlplane_operations_retried", action="create", state="succeeded") == 1
    assert value(samples, "controlplane_operation_extra_attempts", action="create", state="succeeded") == 2
    assert value(samples, "controlplane_operation_extra_attempts", action="stop", state="failed") == 4
    assert value(samples, "controlplane_operation_extra_attempts", action="reboot", state="running") == 1
    assert value(samples, "controlplane_operation_oldest_age_seconds", state="pending") == pytest.approx(120, abs=5)
    assert value(samples, "controlplane_operation_oldest_age_seconds", state="running") == pytest.approx(90, abs=5)
    assert value(samples, "controlplane_operations_lease_expired") == 1

    # Latency: the two creates finished within the window (42 s and 3 s); no histogram for active ones
    latency = "controlplane_operation_duration_seconds"
    assert value(samples, f"{latency}_gcount", action="create", state="succeeded") == 2
    assert value(samples, f"{latency}_gsum", action="create", state="succeeded") == pytest.approx(45)
    assert value(samples, f"{latency}_bucket", action="create", state="succeeded", le="5.0") == 1
    assert value(samples, f"{latency}_bucket", action="create", state="succeeded", le="30.0") == 1
    assert value(samples, f"{latency}_bucket", action="create", state="succeeded", le="60.0") == 2
    assert value(samples, f"{latency}_bucket", action="stop", state="failed", le="1.0") == 1
    assert (f"{latency}_gcount", frozenset({("action", "reboot"), ("state", "running")})) not in samples

    assert value(samples, "controlplane_vms", hypervisor=hv, status="active") == 2
    assert value(samples, "controlplane_vms_drifted", hypervisor=hv, kind="missing") == 1
    assert value(samples, "controlplane_vms_drifted", hypervisor=hv, kind="lost") == 1

    ages = {
        dict(labels)["worker"]: v for (name, labels), v in samples.items() if name.endswith("heartbeat_age_seconds")
    }
    assert set(ages) == {"fresh@a", "stale@b"}
    assert ages["fresh@a"] < 5 and ages["stale@b"] == pytest.approx(3600, abs=5)
    assert value(samples, "controlplane_workers_alive") == 1
    assert value(samples, "controlplane_queue_workers", queue="control") == 1
    # the hypervisor moved to a queue nobody serves: that is what the alert is for
    assert value(samples, "controlplane_queue_workers", queue=fleet.queue) == 0

    assert value(samples, "controlplane_queue_depth", queue=fleet.queue) == 3
    assert ("controlplane_queue_depth", frozenset({("queue", "control")})) in samples
    assert value(samples, "controlplane_broker_unacked_messages") >= 0
    assert all(value(samples, "controlplane_metrics_collector_up", collector=name) == 1 for name in metrics.COLLECTORS)


def test_the_scrape_costs_the_same_queries_however_many_rows(client, fleet, django_assert_max_num_queries):
    # 9, up to 4 for the per-VM series (controlplane/metrics_vms.py), 5 for hypervisor capacity (a fixed number)
    with django_assert_max_num_queries(18):
        scrape(client)


def test_a_failing_part_is_reported_and_the_rest_still_answers(client, fleet, monkeypatch):
    def broken(now):
        raise ConnectionError("broker down")

    monkeypatch.setitem(metrics.COLLECTORS, "queues", broken)
    samples = scrape(client)
    assert value(samples, "controlplane_metrics_collector_up", collector="queues") == 0
    assert value(samples, "controlplane_metrics_collector_up", collector="operations") == 1
    assert not any(name == "controlplane_queue_depth" for name, _ in samples)


@pytest.mark.django_db
def test_metrics_token_is_required_when_set(client, settings):
    settings.METRICS_TOKEN = "s3cret-token"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-token").status_code == 401
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert response.status_code == 200 and b"controlplane_operations" in response.content


@pytest.mark.django_db
def test_wallet_debits_of_the_window_by_kind(client, project):
    from billing.services.wallet import wallet_adjust, wallet_refund
    from tests.fixtures.billing import fund

    # Given a top-up (a credit) and two debits
    fund(project, "1000.00")
    wallet_adjust(project=project, amount="-150.50", actor="operator", reason="duplicate credit")
    wallet_refund(project=project, amount="100.00", actor="operator", reason="closing the account")

    samples = scrape(client)
    assert value(samples, "controlplane_wallet_debits", kind="adjustment") == 1
    assert value(samples, "controlplane_wallet_debited_inr", kind="adjustment") == 150.5
    assert value(samples, "controlplane_wallet_debited_inr", kind="refund") == 100
    assert ("controlplane_wallet_debits", frozenset({("kind", "topup")})) not in samples
