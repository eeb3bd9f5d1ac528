"""Collection rounds against real back ends: the simulator's store and fakepve's cluster/resources."""

import time

import pytest

from compute.models import Hypervisor, VirtualMachine, VMMetricSample, VMTransfer
from tests.fakepve_server import credentials, settings_for
from workers import metrics as collection
from workers.drivers.base import clear_driver_cache


@pytest.fixture(autouse=True)
def _fresh_drivers():
    clear_driver_cache()
    yield
    clear_driver_cache()


@pytest.mark.django_db
def test_a_simulator_round_stores_one_sample_per_running_vm(sim_vm):
    web, db = sim_vm("web"), sim_vm("db")
    sim_vm.store.set_power(db.backend_id, "stopped")

    result = collection.collect_metrics(web.hypervisor_id)

    assert result["samples"] == 1 and result["vms"] == 2
    (sample,) = VMMetricSample.objects.all()
    assert sample.vm_id == web.pk
    assert 0 <= sample.cpu_pct <= 100 and sample.mem_used > 0


@pytest.mark.django_db
def test_a_hypervisor_that_does_not_answer_leaves_a_gap(sim_vm, simulator):
    web = sim_vm("web")
    simulator.connection |= {"transient_failure_rate": 1, "fail_actions": ["metrics"]}
    simulator.save()

    result = collection.collect_metrics(web.hypervisor_id)

    assert "Simulated transient failure" in result["error"]
    assert not VMMetricSample.objects.exists()  # no zeros written


@pytest.mark.django_db
def test_a_proxmox_round_is_one_cluster_resources_call(pve, fakepve_cafile, user, project, plan, image):
    pve.add_vm(101, "web", config={"cores": 2, "memory": 2048})
    guest = next(vm for vm in pve.vms if vm.vmid == 101)
    guest.status, guest.started_at = "running", 0
    hypervisor = Hypervisor.objects.create(
        name="pve",
        kind="proxmox",
        queue="pve",
        connection=settings_for(pve.host, pve.port, fakepve_cafile),
        credentials=credentials(),
    )
    vm = VirtualMachine.objects.create(
        project=project, owner=user, name="web", plan=plan, image=image, hypervisor=hypervisor, backend_id="101"
    )
    vm.status = "active"
    vm.save()
    before = len(pve.requests)

    guest.stats = {"cpu": 0.5, "mem": 1024 * 2**20, "netin": 1000, "netout": 0, "uptime": 100}
    collection.collect_metrics(hypervisor.pk)
    time.sleep(1.1)  # samples are stored per second
    guest.stats = {"cpu": 0.25, "mem": 1024 * 2**20, "netin": 61_000, "netout": 30_000, "uptime": 160}
    collection.collect_metrics(hypervisor.pk)

    calls = [path for _, path, _ in pve.requests[before:]]
    assert calls == ["/api2/json/cluster/resources"] * 2
    first, second = VMMetricSample.objects.filter(vm=vm).order_by("at")
    assert first.cpu_pct == pytest.approx(50) and second.cpu_pct == pytest.approx(25)
    assert second.mem_total == pytest.approx(2048 * 2**20, rel=1e-6)  # 4-byte floats: 7 digits
    transfer = VMTransfer.objects.get(vm=vm)
    assert (transfer.rx_bytes, transfer.tx_bytes) == (60_000, 30_000)
