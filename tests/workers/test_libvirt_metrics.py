"""libvirt metrics, real tier: getAllDomainStats of a real QEMU guest (busybox, TCG).

A running guest's CPU time grows between two readings and its network and disk
counters are there; a cold restart (new QEMU process) starts the counters again,
which the collector reads as a reset. The guest has a NIC on the run's own bridge
(libvirt_support.make_bridge): the guest's ARP requests move its tx counter, the raw
frames the host broadcasts onto the bridge its rx counter. Fails (never skips) without
the real host."""

import time
import uuid

import pytest

from tests.workers.contract import wait_done
from tests.workers.libvirt_support import (
    GUEST_IMAGE_REF,
    PREFIX,
    REAL_SETTINGS,
    delete_ours,
    libvirt_driver,
    make_bridge,
    real_host,
    remove_bridge,
    send_frames,
    wait_serial,
)
from tests.workers.libvirt_support import spec_factory as _spec_factory
from workers.drivers.base import Capability, PowerState
from workers.drivers.libvirt.domain import domain_name


@pytest.fixture(scope="module")
def host():
    yield from real_host()


@pytest.fixture
def driver(host):
    driver = libvirt_driver("libvirt-real-metrics", REAL_SETTINGS, bridge=make_bridge())
    yield driver
    delete_ours(driver)
    remove_bridge()


def _reading(driver, backend_id):
    return {r.backend_id: r for r in driver.metrics()}[backend_id]


def _wait_until(check, timeout=90):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.5)


def test_a_real_guest_reports_growing_cpu_time_and_its_counters(driver):
    assert driver.supports(Capability.METRICS)
    spec = _spec_factory(GUEST_IMAGE_REF)(name=f"{PREFIX}m-{uuid.uuid4().hex[:6]}")
    task = driver.create(spec)
    status = wait_done(driver, task, 90)
    backend_id = (status.vm.backend_id if status.vm else None) or task.backend_id

    first = _reading(driver, backend_id)
    assert first.power_state == PowerState.RUNNING
    assert first.cpu_time_ns > 0
    assert first.vcpus == 1
    assert first.memory_total_bytes == 128 * 1024**2
    assert 0 < first.memory_used_bytes <= first.memory_total_bytes
    assert first.net_rx_bytes is not None and first.net_tx_bytes is not None
    _wait_until(lambda: _reading(driver, backend_id).cpu_time_ns > first.cpu_time_ns)

    # The guest's NIC: what it sends (ARP for 192.0.2.1 every second) moves tx; what the host
    # broadcasts onto the bridge moves rx by at least those bytes
    wait_serial(domain_name(spec), "GUEST-NIC eth0")
    sent_at = _reading(driver, backend_id)
    _wait_until(lambda: _reading(driver, backend_id).net_tx_bytes > sent_at.net_tx_bytes)
    sent = send_frames(200)
    _wait_until(lambda: _reading(driver, backend_id).net_rx_bytes >= sent_at.net_rx_bytes + sent)
    _wait_until(lambda: _reading(driver, backend_id).disk_read_ops > 0)  # the guest probes its disk

    # A cold restart is a new QEMU process: CPU time starts again from zero.
    before = _reading(driver, backend_id)
    wait_done(driver, driver.stop(backend_id, force=True), 90)
    assert _reading(driver, backend_id).cpu_time_ns is None  # off: no reading of counters
    wait_done(driver, driver.start(backend_id), 90)
    assert _reading(driver, backend_id).cpu_time_ns < before.cpu_time_ns


def test_collection_turns_a_real_guests_counters_into_rates_and_transfer(driver, user, project, plan, image):
    # Given a VM of ours whose guest runs on the real libvirtd with a NIC on the run's bridge
    from compute.models import VirtualMachine, VMMetricSample, VMTransfer
    from tests.fixtures.factories import HypervisorFactory
    from workers.metrics import collect_metrics

    spec = _spec_factory(GUEST_IMAGE_REF)(name=f"{PREFIX}mc-{uuid.uuid4().hex[:6]}")
    task = driver.create(spec)
    status = wait_done(driver, task, 90)
    backend_id = (status.vm.backend_id if status.vm else None) or task.backend_id
    hypervisor = HypervisorFactory(
        name="kvm-metrics", kind="libvirt", queue="nobody", connection=driver.config.settings
    )
    vm = VirtualMachine.objects.create(
        project=project,
        owner=user,
        name=spec.name,
        plan=plan,
        image=image,
        hypervisor=hypervisor,
        backend_id=backend_id,
        status="active",
        power_state="running",
    )
    wait_serial(domain_name(spec), "GUEST-NIC eth0")

    # When the collector runs twice with traffic in between (the first round primes the counters)
    assert collect_metrics(hypervisor.pk)["samples"] == 1
    sent = send_frames(200)
    time.sleep(2)
    assert collect_metrics(hypervisor.pk)["samples"] == 1

    # Then the second sample has CPU, memory and network rates, and the month's transfer counts the bytes
    latest = VMMetricSample.objects.filter(vm=vm).order_by("-at").first()
    assert latest.cpu_pct is not None and latest.cpu_pct > 0
    assert latest.mem_used and abs(latest.mem_total - 128 * 1024**2) < 1024  # a 4-byte real
    assert latest.net_rx_bps >= sent * 8 / 60 and latest.net_tx_bps > 0  # bits/s over at most a minute
    transfer = VMTransfer.objects.get(vm=vm)
    assert transfer.rx_bytes >= sent and transfer.tx_bytes > 0
