"""The chaos run's invariant checks name what is wrong (they are only worth their passes if they can fail)."""

import pytest

from bench.chaos.invariants import Context, run_all
from compute import services
from compute.choices import OperationState, PowerState, VMStatus
from compute.models import Operation, ProjectQuota, VirtualMachine
from workers.drivers.simulator import store_for


@pytest.fixture
def world(user, project, plan, image, simulator):
    """One active VM whose guest runs on the simulator; its create operation succeeded."""
    simulator.queue = "nobody-serves-this"
    simulator.save()
    request = services.vm_request_create(
        user=user, project=project, plan=plan, image=image, hypervisor=simulator, name="vm-a"
    )
    vm = VirtualMachine.objects.get(request=request)
    op = vm.operations.get()
    store = store_for(simulator.connection["state_path"])
    backend_id = store.add_guest("vm-a", idempotency_key=str(op.idempotency_key))
    with store.write() as db:
        db.execute(
            "INSERT INTO create_log (idempotency_key, backend_id, at) VALUES (?, ?, 0)",
            (str(op.idempotency_key), backend_id),
        )
    Operation.objects.filter(vm=vm).update(state=OperationState.SUCCEEDED)
    observed = {"power_state": PowerState.RUNNING, "backend_id": backend_id}
    services.vm_record_status(vm=vm, status=VMStatus.ACTIVE, observed=observed, operation=op, source="test")
    vm.refresh_from_db()
    return Context(state_path=simulator.connection["state_path"], hypervisor_id=simulator.pk), vm, store


def failures(ctx):
    return {check.name: check.offenders for check in run_all(ctx) if not check.ok}


def test_a_consistent_world_passes(world):
    ctx, _, _ = world
    assert failures(ctx) == {}


def test_a_guest_left_behind_a_deleted_vm_is_named(world):
    ctx, vm, _ = world
    VirtualMachine.objects.filter(pk=vm.pk).update(status=VMStatus.DELETED, quota_held=False)
    found = failures(ctx)["database and hypervisor agree after reconciliation"]
    assert any(f"vm {vm.pk}" in line and "still exists" in line for line in found)


def test_power_state_drift_and_a_second_build_are_named(world):
    ctx, vm, store = world
    store.set_power(vm.backend_id, PowerState.STOPPED)
    key = str(vm.operations.get().idempotency_key)
    with store.write() as db:
        db.execute("INSERT INTO create_log (idempotency_key, backend_id, at) VALUES (?, 'sim-twice', 0)", (key,))
    found = failures(ctx)
    assert any(
        "power_state running in the database, stopped" in line
        for line in found["database and hypervisor agree after reconciliation"]
    )
    assert any(key in line and "created 2 guests" in line for line in found["no VM created twice on the hypervisor"])


def test_a_stuck_operation_a_busy_vm_and_a_quota_leak_are_named(world, project):
    ctx, vm, _ = world
    op = Operation.objects.get(vm=vm)
    Operation.objects.filter(pk=op.pk).update(state=OperationState.RUNNING)
    VirtualMachine.objects.filter(pk=vm.pk).update(task_state="stop")
    ProjectQuota.objects.filter(project=project).update(used_vms=5)
    found = failures(ctx)
    assert any(f"operation {op.pk}" in line for line in found["every operation reached a final state"])
    assert any(f"vm {vm.pk}" in line for line in found["no VM left busy or building"])
    assert any("used_vms 5" in line for line in found["quota usage matches the VMs holding it"])


def test_a_backup_lost_from_the_records_or_storage_is_named(world):
    from compute.choices import BackupState
    from compute.models import Backup

    ctx, vm, store = world
    kept = Backup.objects.create(vm=vm, state=BackupState.AVAILABLE, backend_ref="cp-backup-kept")
    Backup.objects.create(vm=vm, state=BackupState.DELETED, backend_ref="cp-backup-gone")
    with store.write() as db:
        for ref in (kept.backend_ref, "cp-backup-gone", "cp-backup-orphan"):
            db.execute(
                "INSERT INTO backups (backend_id, ref, size_bytes, created_at) VALUES (?, ?, 1, 0)",
                (vm.backend_id, ref),
            )
    found = failures(ctx)["no backup lost from the records"]
    assert found == [
        f"vm {vm.pk}: records ['cp-backup-kept'], backup storage "
        "['cp-backup-gone', 'cp-backup-kept', 'cp-backup-orphan']"
    ]
    with store.write() as db:
        db.execute("DELETE FROM backups WHERE ref != ?", (kept.backend_ref,))
    assert "no backup lost from the records" not in failures(ctx)
