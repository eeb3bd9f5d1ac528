"""OpenStack backups (nova ``createBackup``) against real nova: nova's functional stack (API,
conductor, scheduler, two computes with the fake virt driver, placement; tests/novastack),
through the driver (backup → list → restore, a rebuild from the backup image → delete), then
through the API, the engine and a real Celery worker."""

import pytest

from compute.choices import Action, BackupState, OperationState, VMStatus
from compute.models import Backup, Operation, VirtualMachine
from tests.fixtures.compute import accepted_and_succeeded, wait_operation
from tests.fixtures.openstack import QUIET_SDK
from tests.workers.contract import wait_done
from tests.workers.test_openstack_day2 import _actions, _server
from tests.workers.test_openstack_e2e import _os_session_worker, cloud, os_worker, request_and_approve  # noqa: F401
from tests.workers.test_openstack_nova import new_driver, nova_spec, tenant  # noqa: F401  (fixtures)
from workers import engine
from workers.drivers.base import Capability, HypervisorConfig, PermanentDriverError, PowerState
from workers.drivers.openstack import OpenStackDriver
from workers.drivers.openstack.backups import BACKUP_METADATA, BACKUP_TYPE, ROTATION, backup_name

pytestmark = QUIET_SDK


def test_backup_restore_delete_through_nova(new_driver, nova_spec):  # noqa: F811
    driver = new_driver()
    assert Capability.BACKUPS in driver.capabilities
    backend_id = wait_done(driver, driver.create(nova_spec()), 60).vm.backend_id
    first_image = _server(driver, backend_id).image["id"]

    # Backup now: nova's createBackup, our ref in the image's metadata, its size reported
    status = wait_done(driver, driver.backup_create(backend_id, ref="cp-backup-1"), 90)
    image = driver.client.conn.compute.get_image(driver._backup_images(backend_id)["cp-backup-1"].id)
    assert image.name == backup_name(backend_id, "cp-backup-1") and image.status == "ACTIVE"
    assert image.metadata[BACKUP_METADATA] == "cp-backup-1"
    assert image.metadata["image_type"] == "backup" and image.metadata["backup_type"] == BACKUP_TYPE
    assert status.result == {"size_bytes": image.size} and image.size > 0, image.size
    assert status.vm.power_state == PowerState.RUNNING
    assert "createBackup" in _actions(driver, backend_id)

    # Submitted again (a retry after a crash): the image is followed, no second createBackup
    wait_done(driver, driver.backup_create(backend_id, ref="cp-backup-1"), 60)
    assert _actions(driver, backend_id).count("createBackup") == 1

    # A second backup: nova's rotation (ours is huge) keeps both
    wait_done(driver, driver.backup_create(backend_id, ref="cp-backup-2"), 90)
    listed = {b.ref: b.size_bytes for b in driver.backup_list(backend_id)}
    assert listed == {"cp-backup-1": image.size, "cp-backup-2": listed["cp-backup-2"]} and ROTATION > 2

    # Restore a stopped server: rebuilt from the backup image, still stopped, markers kept
    wait_done(driver, driver.stop(backend_id), 60)
    restored = wait_done(driver, driver.backup_restore(backend_id, ref="cp-backup-1"), 90)
    server = _server(driver, backend_id)
    assert server.image["id"] == image.id != first_image and server.status == "SHUTOFF"
    assert restored.vm.backend_id == backend_id and restored.vm.power_state == PowerState.STOPPED
    assert "cp_idempotency_key" in server.metadata

    # An unknown backup cannot be restored
    with pytest.raises(PermanentDriverError) as unknown:
        driver.backup_restore(backend_id, ref="cp-backup-404")
    assert unknown.value.code == "not_found"

    # Delete removes the image; deleting it again is done at once
    wait_done(driver, driver.backup_delete(backend_id, ref="cp-backup-2"), 60)
    assert [b.ref for b in driver.backup_list(backend_id)] == ["cp-backup-1"]
    assert driver.backup_delete(backend_id, ref="cp-backup-2").done

    # The backup outlives its server (a glance image), until deleted
    wait_done(driver, driver.delete(backend_id), 60)
    assert [b.ref for b in driver.backup_list(backend_id)] == ["cp-backup-1"]
    driver.client.conn.compute.delete_image(image.id)
    assert driver.backup_list(backend_id) == []


@pytest.mark.worker
def test_backup_restore_delete_through_the_engine_and_a_real_worker(os_worker, api, staff_api, project, cloud):  # noqa: F811
    # Given a VM built on nova by the worker
    hypervisor, _, _ = cloud
    vm_id = request_and_approve(api, staff_api, project, cloud, "bk-1")
    create = wait_operation(Operation.objects.get(vm_id=vm_id, action=Action.CREATE).pk, timeout=90)
    assert create.state == OperationState.SUCCEEDED, create.error_message
    vm = VirtualMachine.objects.get(pk=vm_id)
    base = f"/api/v1/virtual-machines/{vm.pk}/backups/"
    driver = OpenStackDriver(HypervisorConfig(name="look", kind="openstack", settings=hypervisor.connection))

    # When the user backs it up: one operation, nova's createBackup, the image's size on the row
    made = accepted_and_succeeded(api.post(base), timeout=90)
    backup = Backup.objects.get(vm=vm)
    image = driver._backup_images(vm.backend_id)[backup.backend_ref]
    assert made.action == Action.BACKUP_CREATE and backup.state == BackupState.AVAILABLE
    assert backup.size_bytes == image.size > 0 and backup.completed_at is not None
    assert _actions(driver, vm.backend_id).count("createBackup") == 1

    # Then a restore rebuilds the server from the backup image; it keeps running
    restore = accepted_and_succeeded(api.post(f"{base}{backup.pk}/restore/"), timeout=90)
    assert restore.action == Action.BACKUP_RESTORE
    assert _server(driver, vm.backend_id).image["id"] == image.id
    vm.refresh_from_db()
    assert (vm.status, vm.power_state) == (VMStatus.ACTIVE, PowerState.RUNNING)

    # And delete removes the image; the row records when (backup storage billing ends there)
    accepted_and_succeeded(api.delete(f"{base}{backup.pk}/"), timeout=60)
    backup.refresh_from_db()
    assert backup.state == BackupState.DELETED and backup.deleted_at is not None
    assert driver.backup_list(vm.backend_id) == []
    report = engine.reconcile_hypervisor(hypervisor)
    assert (report["backups_missing"], report["backups_unknown"]) == (0, 0)
    driver.close()
