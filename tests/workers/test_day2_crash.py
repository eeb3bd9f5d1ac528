"""A real worker SIGKILLed mid-resize and mid-rebuild: the operation still ends, the VM is on
exactly one plan (the hypervisor runs the one we bill) and a rebuild writes one disk, not two
or none, even when the crash came between the submit and recording its handle."""

import pytest

from compute import services
from compute.choices import OperationState, VMStatus
from compute.models import Operation, VirtualMachine, VMStatusEvent
from tests.fixtures.compute import wait_for, wait_operation
from tests.fixtures.factories import ImageFactory, PlanFactory
from workers import engine
from workers.engine import driver_for

pytestmark = pytest.mark.worker


def _running_vm(worker_factory, user, project, plan, image, simulator):
    # A queue only this worker serves: the session's worker must not take the operation we kill
    simulator.connection.update(latency=0.2)
    simulator.queue = "sim-day2-crash"
    simulator.save()
    worker = worker_factory(queues="sim-day2-crash", name="day2-victim")
    request = services.vm_request_create(
        user=user, project=project, plan=plan, image=image, hypervisor=simulator, name="vm-1"
    )
    vm = VirtualMachine.objects.get(request=request)
    assert wait_operation(Operation.objects.get(vm=vm, action="create").pk).state == OperationState.SUCCEEDED
    simulator.connection.update(latency=3)
    simulator.save()
    vm.refresh_from_db()
    return worker, vm


def _kill_reap_restart(worker, operation, before_restart=None):
    wait_for(lambda: Operation.objects.get(pk=operation.pk).task_ref, timeout=60, message="submitted")
    worker.kill()
    assert Operation.objects.get(pk=operation.pk).state == OperationState.RUNNING
    wait_for(lambda: engine.reap_expired_operations()["requeued"], timeout=90, interval=0.5, message="reaped")
    if before_restart:
        before_restart()
    worker.start()
    done = wait_operation(operation.pk, timeout=60)
    worker.stop()
    return done


def test_worker_killed_mid_resize_ends_on_one_plan(
    celery_worker_factory, transactional_db, user, project, plan, image, simulator
):
    worker, vm = _running_vm(celery_worker_factory, user, project, plan, image, simulator)
    bigger = PlanFactory(vcpus=2, memory_mib=2048, disk_gib=30)

    operation = services.vm_resize(vm=vm, plan=bigger, user=user)
    done = _kill_reap_restart(worker, operation)

    assert done.state == OperationState.SUCCEEDED, done.error_message
    assert done.attempts == 2
    vm.refresh_from_db()
    project.quota.refresh_from_db()
    assert (vm.plan_id, vm.status, vm.task_state) == (bigger.pk, VMStatus.ACTIVE, None)
    assert driver_for(simulator).sizes(vm.backend_id) == {"vcpus": 2, "memory_mib": 2048, "disk_gib": 30}
    assert (project.quota.used_vcpus, project.quota.used_memory_mib, project.quota.used_disk_gib) == (2, 2048, 30)
    plans = list(VMStatusEvent.objects.filter(vm=vm, operation=done).values_list("plan_id", flat=True))
    assert plans == [bigger.pk]  # the plan change is in the timeline once


def test_worker_killed_mid_rebuild_writes_one_disk(
    celery_worker_factory, transactional_db, user, project, plan, image, simulator
):
    worker, vm = _running_vm(celery_worker_factory, user, project, plan, image, simulator)
    other = ImageFactory()
    other.references.create(hypervisor=simulator, ref="tmpl-ubuntu-24")
    operation = services.vm_rebuild(vm=vm, image=other, ssh_public_key="ssh-ed25519 AAAA new", user=user)

    def lose_the_handle():
        # As if the worker died between the hypervisor accepting the rebuild and us recording it:
        # the next claim submits again and the driver must find its own rebuild by key.
        Operation.objects.filter(pk=operation.pk).update(task_ref="", task_data={})

    done = _kill_reap_restart(worker, operation, before_restart=lose_the_handle)

    assert done.state == OperationState.SUCCEEDED, done.error_message
    vm.refresh_from_db()
    assert (vm.image_id, vm.ssh_public_key, vm.status, vm.task_state) == (
        other.pk,
        "ssh-ed25519 AAAA new",
        VMStatus.ACTIVE,
        None,
    )
    assert driver_for(simulator).rebuild_counts(vm.backend_id) == {str(operation.idempotency_key): 1}
    assert vm.plan_id == plan.pk and vm.ip_addresses
