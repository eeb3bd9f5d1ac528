"""OpenStack backups (nova ``createBackup``) against real nova: nova's functional stack (API,
conductor, scheduler, two computes with the fake virt driver, placement; tests/novastack),
through the driver: backup → list → restore (a rebuild from the backup image) → delete."""

import pytest

from tests.fixtures.openstack import QUIET_SDK
from tests.workers.contract import wait_done
from tests.workers.test_openstack_day2 import _actions, _server
from tests.workers.test_openstack_nova import new_driver, nova_spec, tenant  # noqa: F401  (fixtures)
from workers.drivers.base import Capability, PermanentDriverError, PowerState
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
