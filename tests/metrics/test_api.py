"""GET /api/v1/virtual-machines/{id}/metrics/ and …/transfer/: series, tiers, gaps, validation, scoping."""

from datetime import timedelta

import pytest
from django.utils import timezone

from compute.models import VMMetricRollup, VMMetricSample, VMTransfer
from compute.services.metrics import month_of
from tests.fixtures.factories import UserFactory


def url(vm, suffix="metrics"):
    return f"/api/v1/virtual-machines/{vm.pk}/{suffix}/"


@pytest.fixture
def vm_with_hour(sim_vm):
    """A VM with samples every minute of the last hour, except a 10-minute hole."""
    vm = sim_vm("web")
    now = timezone.now().replace(second=0, microsecond=0)
    VMMetricSample.objects.bulk_create(
        VMMetricSample(vm=vm, at=now - timedelta(minutes=m), cpu_pct=m, net_rx_bps=8000.0)
        for m in range(1, 60)
        if not 20 <= m < 30
    )
    return vm


@pytest.mark.django_db
def test_the_last_hour_from_raw_samples_with_a_gap(api, vm_with_hour, django_assert_max_num_queries):
    with django_assert_max_num_queries(7):  # one fewer than before: the VM is one light lookup (vm_get_for_user)
        response = api.get(url(vm_with_hour), {"metric": "cpu,network"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["source"] == "raw" and body["step"] == 60
    assert [s["key"] for s in body["series"]] == ["cpu_pct", "net_rx_bps", "net_tx_bps"]
    assert {s["unit"] for s in body["series"]} == {"%", "bit/s"}
    cpu = body["values"]["cpu_pct"]
    assert len(body["t"]) == len(cpu) == 49 + 1  # 49 samples and one null where the hole is
    assert cpu.count(None) == 1
    assert body["values"]["net_tx_bps"] == [None] * 50  # never reported
    assert body["t"] == sorted(body["t"])


@pytest.mark.django_db
def test_a_coarser_step_averages_and_a_month_reads_hourly_rollups(api, vm_with_hour):
    body = api.get(url(vm_with_hour), {"metric": "cpu", "step": 600}).json()
    assert body["step"] == 600 and len(body["t"]) <= 7

    now = timezone.now()
    VMMetricRollup.objects.create(vm=vm_with_hour, step=3600, at=now - timedelta(days=20), cpu_pct=42)
    start = (now - timedelta(days=30)).isoformat()
    body = api.get(url(vm_with_hour), {"metric": "cpu", "from": start}).json()
    assert body["source"] == "1h" and body["values"]["cpu_pct"] == [42.0]


@pytest.mark.parametrize(
    "query,field",
    [
        ({"metric": "cpu,bogus"}, "metric"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-01-01"}, "from"),  # a date is not a date-time
        ({"to": "2026-01-01T00:00:00"}, "to"),  # nor one without its offset
        ({"to": ""}, "to"),
        ({"metric": "cpu, memory"}, "metric"),
        ({"metric": "cpu,"}, "metric"),
        # Past the calendar once the offset is applied: 400, not 500.
        ({"from": "0001-01-01T00:00:00+23:59"}, "from"),
        ({"to": "9999-12-31T23:59:59-23:59"}, "to"),
        ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        ({"from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        ({"step": "10"}, "step"),
        ({"step": "60", "from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "step"),
    ],
)
@pytest.mark.django_db
def test_bad_queries_are_400_with_the_reason(api, sim_vm, query, field):
    response = api.get(url(sim_vm("web")), query)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["fields"] and error["message"]


@pytest.mark.django_db
def test_the_calendar_edges_are_answered(api, sim_vm):
    vm = sim_vm("web")
    first = api.get(url(vm), {"from": "0001-01-01T00:00:00Z", "to": "0001-01-01T00:30:00Z", "metric": "cpu"})
    assert first.status_code == 200 and first.json()["t"] == []
    too_early = api.get(url(vm), {"to": "0001-01-01T00:30:00Z"})  # the default `from` is before year 1
    assert too_early.status_code == 400 and "to" in too_early.json()["error"]["fields"]
    last = api.get(url(vm), {"from": "9999-12-31T00:00:00Z", "to": "9999-12-31T23:59:59.999999999Z"})
    assert last.status_code == 200


@pytest.mark.django_db
def test_another_projects_vm_is_404(sim_vm, client):
    vm = sim_vm("web")
    client.force_login(UserFactory())
    assert client.get(url(vm)).status_code == 404
    assert client.get(url(vm, "transfer")).status_code == 404
    assert client.get("/api/v1/virtual-machines/abc/metrics/").status_code == 404


@pytest.mark.django_db
def test_transfer_against_the_plan_with_a_projection(api, sim_vm):
    vm = sim_vm("web")
    vm.plan.included_transfer_gb = 10
    vm.plan.save()
    VMTransfer.objects.create(
        vm=vm, month=month_of(timezone.now()), rx_bytes=2 * 10**9, tx_bytes=10**9, updated_at=timezone.now()
    )
    body = api.get(url(vm, "transfer")).json()
    assert body["total_bytes"] == 3 * 10**9 and body["included_bytes"] == 10 * 10**9
    assert body["used_percent"] == 30.0
    assert body["projected_bytes"] >= body["total_bytes"]


@pytest.mark.django_db
def test_alert_rules_through_the_api(api, sim_vm, client):
    vm = sim_vm("web")
    response = api.post(url(vm, "alert-rules"), {"kind": "cpu", "threshold": 90, "duration_minutes": 5}, format="json")
    assert response.status_code == 201, response.content
    rule = response.json()
    assert (rule["kind"], rule["threshold"], rule["state"], rule["events"]) == ("cpu", 90, "ok", [])
    assert [r["id"] for r in api.get(url(vm, "alert-rules")).json()] == [rule["id"]]

    bad = api.post(url(vm, "alert-rules"), {"kind": "cpu", "threshold": 500}, format="json")
    assert bad.status_code == 400 and "threshold" in bad.json()["error"]["fields"]
    unknown = api.post(url(vm, "alert-rules"), {"kind": ["cpu"], "threshold": 50}, format="json")
    assert unknown.status_code == 400 and "kind" in unknown.json()["error"]["fields"]
    viewer = UserFactory()
    from accounts.models import Membership

    Membership.objects.create(project=vm.project, user=viewer, role="viewer")
    client.force_login(viewer)
    assert client.get(url(vm, "alert-rules")).status_code == 200
    assert client.post(url(vm, "alert-rules"), {"kind": "cpu", "threshold": 50}).status_code == 403

    assert api.delete(url(vm, f"alert-rules/{rule['id']}")).status_code == 204
    assert api.get(url(vm, "alert-rules")).json() == []
