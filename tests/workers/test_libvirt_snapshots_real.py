"""libvirt snapshots, real tier: internal qcow2 snapshots of a booted QEMU guest (memory
included), seen by qemu-img in the guest's own disk file; revert brings back a running guest
in place; a stopped guest stays stopped; delete removes the snapshot from the file."""

import subprocess

import libvirt
import pytest

from tests.workers.contract import wait_done
from tests.workers.libvirt_support import (
    GUEST_IMAGE_REF,
    REAL_POOL,
    REAL_SETTINGS,
    delete_ours,
    libvirt_driver,
    real_host,
    serial_text,
    spec_factory,
    wait_serial,
)
from workers.drivers.base import PowerState
from workers.drivers.libvirt.domain import domain_name


@pytest.fixture(scope="module")
def host():
    yield from real_host()


@pytest.fixture
def driver(host):
    driver = libvirt_driver("libvirt-real", REAL_SETTINGS)
    yield driver
    delete_ours(driver)


def _qemu_snapshots(host, name) -> str:
    disk = host.storagePoolLookupByName(REAL_POOL).storageVolLookupByName(f"{name}-disk.qcow2")
    return subprocess.run(
        ["qemu-img", "snapshot", "-U", "-l", disk.path()], capture_output=True, text=True, check=True
    ).stdout


def test_internal_snapshot_of_a_running_guest_revert_and_delete(host, driver):
    # Given a real guest that booted
    spec = spec_factory(GUEST_IMAGE_REF)()
    name = domain_name(spec)
    status = wait_done(driver, driver.create(spec), 90)
    backend_id = status.vm.backend_id
    wait_serial(name, "GUEST-READY")

    # When a snapshot is taken, it is inside the guest's qcow2 with its memory (VM SIZE > 0)
    wait_done(driver, driver.snapshot_create(backend_id, ref="cp-real-1"), 90)
    line = next(row for row in _qemu_snapshots(host, name).splitlines() if "cp-real-1" in row)
    vm_size = " ".join(line.split("cp-real-1", 1)[1].split()[0:2])
    assert vm_size != "0 B" and vm_size[0].isdigit(), line  # memory state saved
    assert [s.ref for s in driver.snapshot_list(backend_id)] == ["cp-real-1"]

    # Then reverting a running guest leaves it running from the snapshot's state
    dom = host.lookupByUUIDString(backend_id)
    wait_done(driver, driver.snapshot_revert(backend_id, ref="cp-real-1"), 90)
    assert driver.get(backend_id).power_state == PowerState.RUNNING
    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING  # QEMU loaded the snapshot's memory in place
    assert dom.snapshotCurrent(0).getName() == "cp-real-1"
    assert "GUEST-READY" in serial_text(name)

    # A stopped guest stays stopped after a revert
    assert driver.stop(backend_id, force=True).done
    wait_done(driver, driver.snapshot_revert(backend_id, ref="cp-real-1"), 90)
    assert driver.get(backend_id).power_state == PowerState.STOPPED

    # And delete removes it from the disk file
    wait_done(driver, driver.snapshot_delete(backend_id, ref="cp-real-1"), 90)
    assert "cp-real-1" not in _qemu_snapshots(host, name)
    assert driver.snapshot_list(backend_id) == []
