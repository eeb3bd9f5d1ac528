"""Rollups (5 min from raw, 1 h from 5 min) and expiry of each tier."""

from datetime import UTC, datetime, timedelta

import pytest

from compute.models import VMMetricRollup, VMMetricSample
from compute.services.metrics import metrics_expire, metrics_ingest, metrics_rollup
from tests.fixtures.metrics import reading

T0 = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_rollups_average_and_keep_the_peak_and_rerunning_adds_nothing(sim_vm):
    vm = sim_vm("web")
    for minute in range(125):  # two complete hours and a bit; CPU 10 % except one busy minute
        fraction = 0.9 if minute == 7 else 0.1
        at = (T0 + timedelta(minutes=minute)).timestamp()
        metrics_ingest(hypervisor_id=vm.hypervisor_id, readings=[reading(vm.backend_id, at, cpu_fraction=fraction)])
    now = T0 + timedelta(minutes=127)

    assert metrics_rollup(now=now) == {300: 25, 3600: 2}
    assert metrics_rollup(now=now) == {300: 0, 3600: 0}
    five = VMMetricRollup.objects.get(vm=vm, step=300, at=T0 + timedelta(minutes=5))
    assert five.samples == 5
    assert five.cpu_pct == pytest.approx((90 + 4 * 10) / 5)
    assert five.cpu_max == pytest.approx(90)
    hour = VMMetricRollup.objects.get(vm=vm, step=3600, at=T0)
    assert hour.samples == 60 and hour.cpu_max == pytest.approx(90)
    assert hour.cpu_pct == pytest.approx((90 + 59 * 10) / 60, rel=1e-5)


@pytest.mark.django_db
def test_each_tier_expires_by_itself(sim_vm, settings):
    vm = sim_vm("web")
    old, recent = T0 - timedelta(hours=49), T0 - timedelta(hours=1)
    VMMetricSample.objects.bulk_create([VMMetricSample(vm=vm, at=old), VMMetricSample(vm=vm, at=recent)])
    VMMetricRollup.objects.bulk_create(
        [
            VMMetricRollup(vm=vm, step=300, at=T0 - timedelta(days=31)),
            VMMetricRollup(vm=vm, step=300, at=T0 - timedelta(days=29)),
            VMMetricRollup(vm=vm, step=3600, at=T0 - timedelta(days=366)),
            VMMetricRollup(vm=vm, step=3600, at=T0 - timedelta(days=31)),
        ]
    )
    assert metrics_expire(now=T0) == {"raw": 1, "5m": 1, "1h": 1}
    assert list(VMMetricSample.objects.values_list("at", flat=True)) == [recent]
    assert VMMetricRollup.objects.count() == 2
