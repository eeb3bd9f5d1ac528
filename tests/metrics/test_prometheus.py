"""/metrics: per-VM series from the latest samples, bounded by METRICS_PROMETHEUS_MAX_VMS."""

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from compute.models import VMMetricSample, VMTransfer
from compute.services.metrics import month_of


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


@pytest.mark.django_db
def test_latest_sample_per_vm_and_the_cardinality_limit(client, sim_vm, settings):
    now = timezone.now()
    web, db = sim_vm("web"), sim_vm("db")
    VMMetricSample.objects.create(vm=web, at=now - timezone.timedelta(seconds=70), cpu_pct=10)
    VMMetricSample.objects.create(vm=web, at=now - timezone.timedelta(seconds=10), cpu_pct=42, net_rx_bps=8000)
    VMTransfer.objects.create(vm=web, month=month_of(now), rx_bytes=5, tx_bytes=7, updated_at=now)
    labels = frozenset(
        {"vm": "web", "vm_id": str(web.pk), "project": web.project.slug, "hypervisor": web.hypervisor.name}.items()
    )

    samples = scrape(client)
    assert samples[("controlplane_vm_cpu_percent", labels)] == 42
    assert samples[("controlplane_vm_network_receive_bits_per_second", labels)] == 8000
    assert samples[("controlplane_vm_transfer_month_bytes", labels)] == 12
    assert ("controlplane_vm_network_transmit_bits_per_second", labels) not in samples  # unknown: no series
    assert samples[("controlplane_vm_series_omitted", frozenset())] == 0
    assert samples[("controlplane_metrics_collector_up", frozenset({"collector": "vm_metrics"}.items()))] == 1

    settings.VM_METRICS = {**settings.VM_METRICS, "PROMETHEUS_MAX_VMS": 1}
    samples = scrape(client)
    assert samples[("controlplane_vm_series_omitted", frozenset())] == 1
    assert not any(dict(key[1]).get("vm") == db.name for key in samples)
