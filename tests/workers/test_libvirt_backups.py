"""libvirt backups on the real libvirtd + QEMU tier: a running guest is backed up with
backupBegin (a real QEMU block job, polled with progress), a stopped one by copying its disk;
qemu-img proves each backup holds the disk's content; a restore puts it back (the guest runs
again if it ran); delete removes the volume; a restore is refused while internal snapshots live
in the disk. Guests and volumes are named like every real-tier test (cpt-<pid>-…) and removed."""

import subprocess

import libvirt
import pytest

from compute.choices import BackupState, PowerState, VMStatus
from compute.models import Backup, ImageReference
from tests.fixtures.compute import accepted_and_succeeded, vm_via_api
from tests.fixtures.factories import HypervisorFactory, ImageFactory, PlanFactory
from tests.workers.contract import wait_done
from tests.workers.libvirt_support import (
    GUEST_IMAGE_REF,
    PREFIX,
    REAL_POOL,
    REAL_SETTINGS,
    delete_ours,
    libvirt_driver,
    real_host,
    spec_factory,
    wait_serial,
)
from workers import engine
from workers.drivers.base import PermanentDriverError
from workers.drivers.libvirt.domain import domain_name


@pytest.fixture(scope="module")
def host():
    yield from real_host()


@pytest.fixture
def driver(host):
    driver = libvirt_driver("libvirt-real-backups", REAL_SETTINGS)
    yield driver
    delete_ours(driver)


def _path(host, volume: str) -> str:
    pool = host.storagePoolLookupByName(REAL_POOL)
    pool.refresh(0)
    return pool.storageVolLookupByName(volume).path()


def _same(a: str, b: str) -> bool:
    result = subprocess.run(["qemu-img", "compare", "-U", a, b], capture_output=True, text=True)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode == 0


def test_backup_running_and_stopped_guest_restore_and_delete(host, driver):
    # Given a real guest that booted
    spec = spec_factory(GUEST_IMAGE_REF)()
    name = domain_name(spec)
    backend_id = wait_done(driver, driver.create(spec), 90).vm.backend_id
    wait_serial(name, "GUEST-READY")
    disk = _path(host, f"{name}-disk.qcow2")

    # When it is backed up while running, QEMU runs a backup job the engine polls to its end
    task = driver.backup_create(backend_id, ref="cp-backup-1")
    assert not task.done and task.data["step"] == "backup_job"
    status = wait_done(driver, task, 120)
    assert status.result["size_bytes"] > 0 and status.vm.power_state == "running"
    backup = _path(host, f"{name}--cp-backup-1.qcow2")
    info = subprocess.run(["qemu-img", "info", "-U", backup], capture_output=True, text=True, check=True).stdout
    assert "file format: qcow2" in info and "backing file" not in info  # a standalone copy
    # A second submit of the same backup finds it done (a retry after a crash makes no second copy)
    assert driver.backup_create(backend_id, ref="cp-backup-1").done

    # And a stopped guest's disk is copied at once; both backups hold the disk's content
    assert driver.stop(backend_id, force=True).done
    assert driver.backup_create(backend_id, ref="cp-backup-2").done
    assert _same(disk, backup) and _same(disk, _path(host, f"{name}--cp-backup-2.qcow2"))
    assert sorted(b.ref for b in driver.backup_list(backend_id)) == ["cp-backup-1", "cp-backup-2"]

    # When the disk changes and the first backup is restored, the disk is the backup's again
    subprocess.run(["qemu-io", "-c", "write -P 0x5a 0 64k", disk], capture_output=True, check=True)
    assert not _same(disk, backup)
    assert driver.start(backend_id).done
    assert wait_done(driver, driver.backup_restore(backend_id, ref="cp-backup-1"), 60)
    assert driver.get(backend_id).power_state == "running"  # it ran before: it runs again
    wait_serial(name, "GUEST-READY", count=2)
    assert driver.stop(backend_id, force=True).done
    assert _same(_path(host, f"{name}-disk.qcow2"), backup)

    # A restore while internal snapshots live in the disk is refused with the reason
    wait_done(driver, driver.snapshot_create(backend_id, ref="cp-snap"), 60)
    with pytest.raises(PermanentDriverError, match="delete them first"):
        driver.backup_restore(backend_id, ref="cp-backup-2")
    wait_done(driver, driver.snapshot_delete(backend_id, ref="cp-snap"), 60)

    # Delete removes the volume; deleting it again succeeds; an unknown backup cannot be restored
    assert driver.backup_delete(backend_id, ref="cp-backup-1").done
    assert driver.backup_delete(backend_id, ref="cp-backup-1").done
    assert [b.ref for b in driver.backup_list(backend_id)] == ["cp-backup-2"]
    with pytest.raises(PermanentDriverError, match="does not exist"):
        driver.backup_restore(backend_id, ref="cp-backup-1")
    # Backups outlive the guest's own volumes on delete: the test removes its own
    driver.backup_delete(backend_id, ref="cp-backup-2")
    with pytest.raises(libvirt.libvirtError):
        host.storagePoolLookupByName(REAL_POOL).storageVolLookupByName(f"{name}--cp-backup-2.qcow2")


QUEUE = "libvirt-backups-test"


@pytest.fixture
def libvirt_worker(celery_worker_factory, transactional_db):
    worker = celery_worker_factory(queues=f"control,{QUEUE}", name="libvirt-backups", concurrency=2)
    yield worker
    worker.stop()


@pytest.mark.worker
def test_backup_restore_delete_through_the_engine(host, libvirt_worker, api, project):
    # Given a VM on a real libvirt hypervisor, built by the worker
    hypervisor = HypervisorFactory(name="kvm-backups", kind="libvirt", queue=QUEUE, connection=dict(REAL_SETTINGS))
    image = ImageFactory(name="busybox-backups")
    ImageReference.objects.create(image=image, hypervisor=hypervisor, ref=GUEST_IMAGE_REF)
    plan = PlanFactory(memory_mib=128, disk_gib=1, hard_stop_after_seconds=30, max_backups=2)
    vm = vm_via_api(api, project, plan, image, hypervisor, name=f"{PREFIX}bk", timeout=90)
    base = f"/api/v1/virtual-machines/{vm.pk}/backups/"

    # When the user backs it up, the engine submits backupBegin and polls QEMU's job to its end
    create = accepted_and_succeeded(api.post(base), timeout=120)
    backup = Backup.objects.get(vm=vm)
    assert create.task_data["data"]["step"] == "backup_job" and backup.state == BackupState.AVAILABLE
    assert backup.size_bytes > 0
    assert [b.ref for b in engine.driver_for(hypervisor).backup_list(vm.backend_id)] == [backup.backend_ref]

    # Then a restore replaces the disk and leaves the VM running; delete removes the volume
    accepted_and_succeeded(api.post(f"{base}{backup.pk}/restore/"), timeout=120)
    vm.refresh_from_db()
    assert (vm.status, vm.power_state) == (VMStatus.ACTIVE, PowerState.RUNNING)
    assert host.lookupByUUIDString(vm.backend_id).state()[0] == libvirt.VIR_DOMAIN_RUNNING
    accepted_and_succeeded(api.delete(f"{base}{backup.pk}/"), timeout=60)
    assert engine.driver_for(hypervisor).backup_list(vm.backend_id) == []
    report = engine.reconcile_hypervisor(hypervisor)
    assert (report["backups_missing"], report["backups_unknown"]) == (0, 0)
    accepted_and_succeeded(api.delete(f"/api/v1/virtual-machines/{vm.pk}/"), timeout=90)
