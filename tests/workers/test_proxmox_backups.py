"""Proxmox backups end to end: API → Operation → Redis → real worker → Proxmox driver → fakepve
as its own process (tests/fakepve_server.py adds vzdump and QEMU restore, which fakepve lacks;
checked only against that fake), where a vzdump, a restore and a clone take real time (a PVE
second is 0.05 s; they take 40 of them), so the worker's UPID polling really waits.
Only QEMU guests are exercised here (an LXC restore goes through fakepve's own ``restore``)."""

import pytest

from compute.choices import BackupState, PowerState, VMStatus
from compute.models import Backup, ImageReference
from tests.fakepve_server import QEMU_TEMPLATE, credentials
from tests.fixtures.compute import accepted_and_succeeded, vm_via_api
from tests.fixtures.factories import HypervisorFactory, ImageFactory, PlanFactory
from workers import engine
from workers.drivers.base import PermanentDriverError

QUEUE = "pve-backups"


@pytest.fixture
def pve_worker(celery_worker_factory, transactional_db):
    worker = celery_worker_factory(queues=f"control,{QUEUE}", name="pve-backups", concurrency=2)
    yield worker
    worker.stop()


@pytest.mark.worker
def test_vzdump_backup_restore_delete_on_proxmox(pve_worker, fakepve_server, api, project):
    # Given a QEMU VM on a Proxmox hypervisor, built by the worker
    hypervisor = HypervisorFactory(
        name="pve-backups",
        kind="proxmox",
        queue=QUEUE,
        connection=fakepve_server.settings(poll_seconds=0.2, backup_storage="local"),
        credentials=credentials(),
    )
    plan = PlanFactory(requires_approval=False, disk_gib=8, max_backups=2)
    image = ImageFactory()
    ImageReference.objects.create(image=image, hypervisor=hypervisor, ref=str(QEMU_TEMPLATE))
    vm = vm_via_api(api, project, plan, image, hypervisor, name="db-1", timeout=60)
    base = f"/api/v1/virtual-machines/{vm.pk}/backups/"
    driver = engine.driver_for(hypervisor)

    # When the user backs it up, the worker submits a vzdump and polls its UPID to the end
    create = accepted_and_succeeded(api.post(base), timeout=60)
    backup = Backup.objects.get(vm=vm)
    assert create.task_ref.split(":")[5] == "vzdump" and backup.state == BackupState.AVAILABLE
    assert len([line for line in fakepve_server.requests(":vzdump:") if "/status" in line]) >= 2
    listed = driver.backup_list(vm.backend_id)
    assert [b.ref for b in listed] == [backup.backend_ref] and listed[0].size_bytes > 0
    assert backup.size_bytes == listed[0].size_bytes  # the archive's size, for backup storage billing
    # A second submit of the same backup finds its archive (no second vzdump) and reports its size
    again = driver.backup_create(vm.backend_id, ref=backup.backend_ref)
    assert again.done and driver.poll(again).result == {"size_bytes": backup.size_bytes}

    # Then a restore of the running VM stops it, restores the archive and starts it again
    restore = accepted_and_succeeded(api.post(f"{base}{backup.pk}/restore/"), timeout=60)
    assert restore.action == "backup_restore"
    assert len(fakepve_server.requests(":qmrestore:")) >= 1
    vm.refresh_from_db()
    assert (vm.status, vm.power_state) == (VMStatus.ACTIVE, PowerState.RUNNING)
    assert driver.get(vm.backend_id).idempotency_key  # the restored config still carries our key

    # And delete removes the archive from the storage; reconciliation finds nothing amiss
    accepted_and_succeeded(api.delete(f"{base}{backup.pk}/"), timeout=60)
    assert Backup.objects.get(pk=backup.pk).state == BackupState.DELETED
    assert driver.backup_list(vm.backend_id) == []
    report = engine.reconcile_hypervisor(hypervisor)
    assert (report["backups_missing"], report["backups_unknown"]) == (0, 0)
    # A deleted backup is gone from the API (404) and the driver refuses to restore an unknown one
    assert api.post(f"{base}{backup.pk}/restore/").status_code == 404
    with pytest.raises(PermanentDriverError, match="does not exist"):
        driver.backup_restore(vm.backend_id, ref=backup.backend_ref)
