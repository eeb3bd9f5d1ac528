"""Counters become rates: across resets, reboots, gaps and stops; transfer is exact bytes."""

from datetime import UTC, datetime

import pytest

from compute.models import VMMetricSample, VMTransfer
from compute.services.metrics import metrics_ingest, month_of
from tests.fixtures.metrics import reading

T0 = 1_800_000_000.0  # a fixed instant (2027-01-15 08:00 UTC)


def ingest(vm, *readings):
    for r in readings:
        metrics_ingest(hypervisor_id=vm.hypervisor_id, readings=[r])


def samples(vm):
    return list(VMMetricSample.objects.filter(vm=vm).order_by("at"))


def transfer(vm):
    row = VMTransfer.objects.get(vm=vm, month=month_of(datetime.fromtimestamp(T0, tz=UTC)))
    return row.rx_bytes, row.tx_bytes


@pytest.mark.django_db
def test_counters_become_rates_and_transfer(sim_vm):
    vm = sim_vm("web")
    b = vm.backend_id
    ingest(
        vm,
        reading(b, T0, vcpus=2, cpu_time_ns=0, net_rx_bytes=1000, net_tx_bytes=0, disk_read_ops=10),
        reading(b, T0 + 60, vcpus=2, cpu_time_ns=60 * 10**9, net_rx_bytes=61_000, net_tx_bytes=6000, disk_read_ops=70),
    )
    first, second = samples(vm)
    assert first.cpu_pct is None and first.net_rx_bps is None  # nothing to compare with yet
    assert second.cpu_pct == pytest.approx(50.0)  # 60 s of CPU over 2 vCPUs in 60 s
    assert second.net_rx_bps == pytest.approx(60_000 * 8 / 60)
    assert second.net_tx_bps == pytest.approx(800.0)
    assert second.disk_read_iops == pytest.approx(1.0)
    assert second.disk_write_bps is None  # not reported: unknown, not zero
    assert transfer(vm) == (60_000, 6000)


@pytest.mark.django_db
def test_a_counter_that_went_down_restarted_and_an_uptime_drop_is_a_reboot(sim_vm):
    vm = sim_vm("web")
    b = vm.backend_id
    ingest(
        vm,
        reading(b, T0, net_rx_bytes=900_000, uptime_seconds=5000),
        reading(b, T0 + 60, net_rx_bytes=6000, uptime_seconds=5060),  # the counter wrapped/reset
        reading(b, T0 + 120, net_rx_bytes=12_000, uptime_seconds=30),  # rebooted 30 s ago
    )
    _, reset, reboot = samples(vm)
    assert reset.net_rx_bps == pytest.approx(6000 * 8 / 60)  # never negative
    assert reboot.net_rx_bps == pytest.approx(12_000 * 8 / 30)  # the bytes since boot, over the uptime
    assert transfer(vm)[0] == 6000 + 12_000


@pytest.mark.django_db
def test_a_round_the_hypervisor_missed_is_a_gap_but_its_bytes_still_count(sim_vm):
    vm = sim_vm("web")
    b = vm.backend_id
    ingest(
        vm,
        reading(b, T0, cpu_time_ns=0, net_tx_bytes=0),
        reading(b, T0 + 600, cpu_time_ns=600 * 10**9, net_tx_bytes=5_000_000),  # 9 rounds missing
    )
    assert len(samples(vm)) == 2  # nothing invented for the missing rounds
    assert samples(vm)[1].cpu_pct is None and samples(vm)[1].net_tx_bps is None
    assert transfer(vm) == (0, 5_000_000)


@pytest.mark.django_db
def test_a_stopped_vm_has_no_samples_and_counts_from_zero_after_start(sim_vm):
    vm = sim_vm("web")
    b = vm.backend_id
    ingest(
        vm,
        reading(b, T0, net_rx_bytes=500_000),
        reading(b, T0 + 60, power_state="stopped"),
        reading(b, T0 + 120, net_rx_bytes=3000),
        reading(b, T0 + 180, net_rx_bytes=9000),
    )
    assert [s.at.timestamp() for s in samples(vm)] == [T0, T0 + 120, T0 + 180]
    assert samples(vm)[2].net_rx_bps == pytest.approx(6000 * 8 / 60)
    assert transfer(vm)[0] == 9000


@pytest.mark.django_db
def test_gauges_and_readings_of_unknown_guests(sim_vm):
    vm = sim_vm("web")
    result = metrics_ingest(
        hypervisor_id=vm.hypervisor_id,
        readings=[
            reading(vm.backend_id, T0, cpu_fraction=0.25, memory_used_bytes=512, memory_total_bytes=1024),
            reading("not-ours", T0, cpu_fraction=1.0),
        ],
    )
    assert result == {"readings": 2, "vms": 1, "samples": 1}
    (sample,) = samples(vm)
    assert (sample.cpu_pct, sample.mem_used, sample.mem_total) == (25.0, 512, 1024)
