"""A libvirt hypervisor end to end: API → Operation → Redis → real Celery worker →
libvirt driver → the real libvirtd booting the busybox guest → write-back."""

import libvirt
import pytest

from compute.choices import OperationState, PowerState, VMStatus
from compute.models import ImageReference, Operation, VirtualMachine
from tests.fixtures.compute import wait_operation
from tests.fixtures.factories import HypervisorFactory, ImageFactory, PlanFactory
from tests.workers.libvirt_support import (
    GUEST_IMAGE_REF,
    PREFIX,
    REAL_POOL,
    REAL_SETTINGS,
    real_host,
    serial_text,
    wait_serial,
)
from workers import engine

pytestmark = pytest.mark.worker
QUEUE = "libvirt-test"


@pytest.fixture
def host():
    yield from real_host()


@pytest.fixture
def libvirt_worker(celery_worker_factory, transactional_db):
    worker = celery_worker_factory(queues=f"control,{QUEUE}", name="libvirt", concurrency=2)
    yield worker
    worker.stop()


def _act(api, vm_id, action):
    if action == "delete":
        response = api.delete(f"/api/v1/virtual-machines/{vm_id}/")
    else:
        response = api.post(f"/api/v1/virtual-machines/{vm_id}/{action}/")
    assert response.status_code == 202, response.json()
    finished = wait_operation(response.json()["operation"]["id"], timeout=90)
    assert finished.state == OperationState.SUCCEEDED, (action, finished.error_code, finished.error_message)
    return finished


def test_vm_lifecycle_on_a_real_libvirt_host(host, libvirt_worker, api, project):
    # Given a libvirt hypervisor configured as an operator would, with the guest image and a small plan
    hypervisor = HypervisorFactory(
        name="kvm-ci", kind="libvirt", queue=QUEUE, connection={**REAL_SETTINGS, "cloud_init": True}
    )
    image = ImageFactory(name="busybox-ci")
    ImageReference.objects.create(image=image, hypervisor=hypervisor, ref=GUEST_IMAGE_REF)
    plan = PlanFactory(memory_mib=128, disk_gib=1, hard_stop_after_seconds=30)

    # When a user asks for a VM (with an SSH key, so the cloud-init seed is made)
    response = api.post(
        "/api/v1/vm-requests/",
        {
            "project": project.slug,
            "plan": plan.pk,
            "image": image.pk,
            "hypervisor": hypervisor.pk,
            "name": f"{PREFIX}e2e",
            "ssh_public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB8rGKQ1Ryh4cWq0S4Y8o5wJXw6H2m1kR7s8mZ3f2a9b e2e@ci",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    vm_id = response.json()["vm"]
    create = wait_operation(Operation.objects.get(vm_id=vm_id, action="create").pk, timeout=90)
    assert create.state == OperationState.SUCCEEDED, create.error_message

    # Then the worker built a running domain carrying the operation's key, and the guest boots
    vm = VirtualMachine.objects.get(pk=vm_id)
    assert (vm.status, vm.power_state, vm.task_state) == (VMStatus.ACTIVE, PowerState.RUNNING, None)
    dom = host.lookupByUUIDString(vm.backend_id)
    assert str(create.idempotency_key) in dom.XMLDesc(0) and f"{dom.name()}-seed.iso" in dom.XMLDesc(0)
    assert create.task_ref == f"create/{vm.backend_id}"
    wait_serial(dom.name(), "GUEST-READY")

    # And reconciliation's one listing sees it as ours, running
    # (the libvirtd is shared: another run's guests may be unknown to this database, ours never)
    report = engine.reconcile_hypervisor(hypervisor)
    hypervisor.refresh_from_db()
    assert report["seen"] >= 1 and vm.backend_id not in hypervisor.drift.get("unknown", [])

    # stop (graceful: the guest powers itself off) → start → reboot (the guest boots again) → delete
    _act(api, vm_id, "stop")
    vm.refresh_from_db()
    assert (vm.status, vm.power_state) == (VMStatus.STOPPED, PowerState.STOPPED)
    assert dom.state() == [libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN]
    assert "GUEST-POWEROFF" in serial_text(dom.name())

    _act(api, vm_id, "start")
    vm.refresh_from_db()
    assert (vm.status, vm.power_state) == (VMStatus.ACTIVE, PowerState.RUNNING) and dom.isActive()
    wait_serial(dom.name(), "GUEST-READY", count=2)

    _act(api, vm_id, "reboot")
    vm.refresh_from_db()
    assert (vm.status, vm.power_state) == (VMStatus.ACTIVE, PowerState.RUNNING)
    wait_serial(dom.name(), "GUEST-READY", count=3)
    assert serial_text(dom.name()).count("GUEST-POWEROFF") == 2  # the reboot was a clean shutdown

    name = dom.name()
    _act(api, vm_id, "delete")
    vm.refresh_from_db()
    assert vm.status == VMStatus.DELETED
    with pytest.raises(libvirt.libvirtError):
        host.lookupByName(name)
    pool = host.storagePoolLookupByName(REAL_POOL)
    pool.refresh(0)
    assert not [v for v in pool.listVolumes() if v.startswith(name)]
    timings = Operation.objects.filter(vm_id=vm_id).order_by("created_at")
    print(
        "\n" + "\n".join(f"  {op.action:8} {(op.finished_at - op.created_at).total_seconds():6.2f} s" for op in timings)
    )
