"""A real worker SIGKILLed mid-backup, even between the hypervisor accepting the backup and the
handle being recorded: the operation still ends, exactly one backup copy is made, and the row
says it is there."""

import pytest

from compute import services
from compute.choices import BackupState, OperationState, VMStatus
from compute.models import Backup, Operation
from tests.workers.test_day2_crash import _kill_reap_restart, _running_vm
from workers.drivers.simulator import store_for
from workers.engine import driver_for

pytestmark = pytest.mark.worker


def test_worker_killed_mid_backup_makes_one_copy(
    celery_worker_factory, transactional_db, user, project, plan, image, simulator
):
    worker, vm = _running_vm(celery_worker_factory, user, project, plan, image, simulator)
    operation = services.vm_backup_create(vm=vm, user=user)
    backup = Backup.objects.get(vm=vm)

    def lose_the_handle():
        Operation.objects.filter(pk=operation.pk).update(task_ref="", task_data={})

    done = _kill_reap_restart(worker, operation, before_restart=lose_the_handle)

    assert done.state == OperationState.SUCCEEDED, done.error_message
    assert done.attempts == 2
    vm.refresh_from_db()
    backup.refresh_from_db()
    assert (vm.status, vm.task_state, backup.state) == (VMStatus.ACTIVE, None, BackupState.AVAILABLE)
    assert [b.ref for b in driver_for(simulator).backup_list(vm.backend_id)] == [backup.backend_ref]
    tasks = (
        store_for(simulator.connection["state_path"])
        .read()
        .execute("SELECT COUNT(*) FROM tasks WHERE backend_id = ? AND action = 'backup_create'", (vm.backend_id,))
    )
    assert tasks.fetchone()[0] == 1  # the retry found the running copy; no second one was started
