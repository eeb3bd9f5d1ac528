"""A real worker SIGKILLed mid-resize and mid-rebuild of a real QEMU guest (libvirtd of
.ci/libvirt-setup.sh): after the reaper and a new worker the operation succeeds, the VM is on
one plan, which is what QEMU runs (read through QMP), and the pool holds one disk."""

import time

import libvirt
import pytest

from compute import services
from compute.choices import OperationState, VMStatus
from compute.models import ImageReference, Operation, VirtualMachine, VMStatusEvent
from tests.fixtures.compute import wait_for, wait_operation
from tests.fixtures.factories import HypervisorFactory, ImageFactory, PlanFactory
from tests.workers.libvirt_support import GUEST_IMAGE_REF, PREFIX, REAL_POOL, REAL_SETTINGS, real_host, wait_serial
from tests.workers.test_libvirt_day2_real import qemu_sizes
from workers import engine

pytestmark = pytest.mark.worker
QUEUE = "libvirt-day2-crash"


@pytest.fixture
def host():
    yield from real_host()


@pytest.fixture
def running_vm(host, celery_worker_factory, transactional_db, user, project):
    hypervisor = HypervisorFactory(
        name="kvm-crash", kind="libvirt", queue=QUEUE, connection={**REAL_SETTINGS, "cloud_init": True}
    )
    image = ImageFactory(name="busybox-crash")
    ImageReference.objects.create(image=image, hypervisor=hypervisor, ref=GUEST_IMAGE_REF)
    plan = PlanFactory(vcpus=1, memory_mib=128, disk_gib=1, hard_stop_after_seconds=30)
    worker = celery_worker_factory(queues=QUEUE, name="libvirt-victim")
    request = services.vm_request_create(
        user=user,
        project=project,
        plan=plan,
        image=image,
        hypervisor=hypervisor,
        name=f"{PREFIX}crash",
        ssh_public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB8rGKQ1Ryh4cWq0S4Y8o5wJXw6H2m1kR7s8mZ3f2a9b c@ci",
    )
    vm = VirtualMachine.objects.get(request=request)
    create = wait_operation(Operation.objects.get(vm=vm, action="create").pk, timeout=90)
    assert create.state == OperationState.SUCCEEDED, create.error_message
    vm.refresh_from_db()
    wait_serial(host.lookupByUUIDString(vm.backend_id).name(), "GUEST-READY")
    yield worker, vm, hypervisor
    worker.stop()


def _reap_and_restart(worker, operation):
    assert Operation.objects.get(pk=operation.pk).state == OperationState.RUNNING
    wait_for(lambda: engine.reap_expired_operations()["requeued"], timeout=90, interval=0.5, message="reaped")
    worker.start()
    done = wait_operation(operation.pk, timeout=120)
    worker.stop()
    return done


def _disks(host, name):
    pool = host.storagePoolLookupByName(REAL_POOL)
    pool.refresh(0)
    return [v for v in pool.listVolumes() if v.startswith(f"{name}-disk")]


def test_worker_killed_mid_resize_of_a_real_guest_ends_on_one_plan(host, running_vm, user, project):
    worker, vm, _ = running_vm
    bigger = PlanFactory(vcpus=2, memory_mib=256, disk_gib=2, hard_stop_after_seconds=30)

    operation = services.vm_resize(vm=vm, plan=bigger, user=user)
    # Killed once the handle is stored: the ACPI shutdown has been sent, the sizes not yet applied
    wait_for(lambda: Operation.objects.get(pk=operation.pk).task_ref, timeout=60, interval=0.02, message="submitted")
    worker.kill()
    done = _reap_and_restart(worker, operation)

    assert done.state == OperationState.SUCCEEDED, done.error_message
    assert done.attempts == 2
    vm.refresh_from_db()
    assert (vm.plan_id, vm.status, vm.task_state) == (bigger.pk, VMStatus.ACTIVE, None)
    dom = host.lookupByUUIDString(vm.backend_id)
    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert qemu_sizes(dom) == {"vcpus": 2, "memory_mib": 256, "disk_gib": 2}  # the plan we bill is what runs
    plans = list(VMStatusEvent.objects.filter(vm=vm, operation=done).values_list("plan_id", flat=True))
    assert plans == [bigger.pk]


def test_worker_killed_mid_rebuild_of_a_real_guest_leaves_one_disk(host, running_vm, user, project):
    worker, vm, hypervisor = running_vm
    name = host.lookupByUUIDString(vm.backend_id).name()
    other = ImageFactory(name="busybox-crash-2")
    ImageReference.objects.create(image=other, hypervisor=hypervisor, ref=GUEST_IMAGE_REF)

    operation = services.vm_rebuild(vm=vm, image=other, ssh_public_key="ssh-ed25519 AAAAnew new@ci", user=user)
    # Killed in the middle: the rebuild has powered the guest off and not yet started it again
    dom = host.lookupByUUIDString(vm.backend_id)
    deadline = time.monotonic() + 60
    while dom.isActive() and time.monotonic() < deadline:
        time.sleep(0.005)
    worker.kill()
    done = _reap_and_restart(worker, operation)

    assert done.state == OperationState.SUCCEEDED, done.error_message
    assert done.attempts == 2
    vm.refresh_from_db()
    assert (vm.image_id, vm.status, vm.task_state) == (other.pk, VMStatus.ACTIVE, None)
    tag = str(operation.idempotency_key).replace("-", "")[:12]
    assert _disks(host, name) == [f"{name}-disk-{tag}.qcow2"]  # one disk: not two, not none
    assert host.lookupByUUIDString(vm.backend_id).isActive()
    wait_serial(name, "GUEST-READY", count=2)
