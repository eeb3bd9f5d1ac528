"""libvirt driver, real tier: the libvirtd started by .ci/libvirt-setup.sh, QEMU in
software emulation, booting the busybox guest. Fails (never skips) when that host
is not there."""

import io
import json
import subprocess
import time
import uuid
from xml.etree import ElementTree

import libvirt
import libvirt_qemu
import pytest

from tests.workers.contract import DriverContract, wait_done
from tests.workers.libvirt_support import (
    GUEST_IMAGE_REF,
    REAL_POOL,
    REAL_SETTINGS,
    delete_ours,
    iso_files,
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


def real_driver(**settings):
    return libvirt_driver("libvirt-real", REAL_SETTINGS, **settings)


@pytest.fixture
def driver(host):
    driver = real_driver()
    yield driver
    delete_ours(driver)


@pytest.fixture
def make_spec():
    return spec_factory(GUEST_IMAGE_REF)


@pytest.fixture
def unknown_backend_id():
    return str(uuid.uuid4())


class TestRealLibvirtContract(DriverContract):
    poll_timeout = 90


def _state(host, backend_id):
    return host.lookupByUUIDString(backend_id).state()


def test_create_start_graceful_shutdown_start_destroy_delete(host, driver, make_spec):
    timings = {}
    spec = make_spec()
    name = domain_name(spec)

    # Given a create: disk overlay + define, then the poll starts it
    started = time.monotonic()
    task = driver.create(spec)
    timings["create (overlay + define)"] = time.monotonic() - started
    started = time.monotonic()
    status = driver.poll(task)
    timings["start"] = time.monotonic() - started
    assert status.done and status.vm.power_state == PowerState.RUNNING
    backend_id = status.vm.backend_id

    # Then the guest really boots from the kernel and initramfs, with its disk attached
    timings["guest boot"] = wait_serial(name, "GUEST-READY")
    assert "/dev/vda" in serial_text(name)
    pool = host.storagePoolLookupByName(REAL_POOL)
    disk = pool.storageVolLookupByName(f"{name}-disk.qcow2")
    info = subprocess.run(["qemu-img", "info", "-U", disk.path()], capture_output=True, text=True, check=True).stdout
    assert pool.storageVolLookupByName("cptest-base.qcow2").path() in info  # an overlay of the base

    # When it is stopped gracefully, the guest powers itself off (ACPI), not destroyed
    started = time.monotonic()
    task = driver.stop(backend_id)
    while _state(host, backend_id)[0] != libvirt.VIR_DOMAIN_SHUTOFF and time.monotonic() - started < 60:
        time.sleep(0.02)
    timings["graceful shutdown"] = time.monotonic() - started
    status = wait_done(driver, task, 60)
    assert status.vm.power_state == PowerState.STOPPED
    assert _state(host, backend_id) == [libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN]
    assert "GUEST-POWEROFF" in serial_text(name)

    # And it starts again and boots a second time
    started = time.monotonic()
    task = driver.start(backend_id)
    timings["start again"] = time.monotonic() - started
    assert task.done and driver.get(backend_id).power_state == PowerState.RUNNING
    wait_serial(name, "GUEST-READY", count=2)

    # A forced stop destroys it
    started = time.monotonic()
    assert driver.stop(backend_id, force=True).done
    timings["destroy"] = time.monotonic() - started
    assert _state(host, backend_id) == [libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED]

    # Delete removes the domain and its disk, never the base image
    started = time.monotonic()
    assert driver.delete(backend_id).done
    timings["delete"] = time.monotonic() - started
    assert driver.get(backend_id) is None
    pool.refresh(0)
    assert f"{name}-disk.qcow2" not in pool.listVolumes() and "cptest-base.qcow2" in pool.listVolumes()
    print("\n" + "\n".join(f"  {label:28} {seconds * 1000:8.0f} ms" for label, seconds in timings.items()))


def test_shutdown_sent_while_booting_is_resent_until_off(host, driver, make_spec):
    # Given a guest stopped right after it started: the first ACPI press comes before acpid listens
    spec = make_spec()
    backend_id = wait_done(driver, driver.create(spec)).vm.backend_id
    task = driver.stop(backend_id)
    # When polled like the engine does, the press is repeated until the guest is off
    presses, deadline = 1, time.monotonic() + 60
    while True:
        status = driver.poll(task)
        if status.done:
            break
        if status.task is not None:
            presses += 1
            task = status.task
        assert time.monotonic() < deadline, serial_text(domain_name(spec))
        time.sleep(status.poll_after)
    # Then it shut down cleanly (no power-off), after more than one press
    assert presses > 1
    assert _state(host, backend_id) == [libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN]
    assert "GUEST-POWEROFF" in serial_text(domain_name(spec))


def test_hard_stop_deadline_powers_off(host, driver, make_spec):
    # Given a plan that waits 1 s, and a guest still booting (it cannot hear the press yet)
    backend_id = wait_done(driver, driver.create(make_spec())).vm.backend_id
    status = wait_done(driver, driver.stop(backend_id, hard_stop_after=1), 30)
    assert "without a clean shutdown" in status.message
    assert _state(host, backend_id) == [libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED]


def test_cloud_init_seed_is_built_uploaded_and_attached(host, make_spec):
    driver = real_driver(cloud_init=True)
    try:
        spec = make_spec(ssh_public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAItest test@ci", user_data="#!/bin/sh\n")
        backend_id = wait_done(driver, driver.create(spec)).vm.backend_id
        name = domain_name(spec)
        # The domain has the seed as a read-only CD-ROM, and QEMU really has it inserted
        root = ElementTree.fromstring(host.lookupByUUIDString(backend_id).XMLDesc(0))
        cdrom = root.find("devices/disk[@device='cdrom']")
        assert cdrom.find("source").get("volume") == f"{name}-seed.iso" and cdrom.find("readonly") is not None
        block = libvirt_qemu.qemuMonitorCommand(
            host.lookupByUUIDString(backend_id), "info block", libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP
        )
        assert f"{name}-seed.iso" in block
        # Its content, read back through a libvirt stream, is a NoCloud seed for this VM
        volume = host.storagePoolLookupByName(REAL_POOL).storageVolLookupByName(f"{name}-seed.iso")
        data = io.BytesIO()
        stream = host.newStream(0)
        volume.download(stream, 0, 0, 0)
        stream.recvAll(lambda _stream, chunk, out: out.write(chunk), data)
        stream.finish()
        label, files = iso_files(data.getvalue())
        assert label == "cidata"
        assert spec.idempotency_key.encode() in files["meta-data"]
        assert b"test@ci" in files["user-data"] and b"#!/bin/sh" in files["user-data"]
        # Delete takes the seed with it
        driver.delete(backend_id)
        host.storagePoolLookupByName(REAL_POOL).refresh(0)
        assert f"{name}-seed.iso" not in host.storagePoolLookupByName(REAL_POOL).listVolumes()
    finally:
        delete_ours(driver)


def test_copy_mode_makes_an_independent_disk(host, make_spec):
    driver = real_driver(disk_mode="copy")
    try:
        spec = make_spec(disk_gib=1)
        status = wait_done(driver, driver.create(spec))
        wait_serial(domain_name(spec), "GUEST-READY")
        volume = host.storagePoolLookupByName(REAL_POOL).storageVolLookupByName(f"{domain_name(spec)}-disk.qcow2")
        info = json.loads(
            subprocess.run(
                ["qemu-img", "info", "-U", "--output=json", volume.path()], capture_output=True, text=True, check=True
            ).stdout
        )
        assert "backing-filename" not in info and info["virtual-size"] == 1024**3
        driver.delete(status.vm.backend_id)
    finally:
        delete_ours(driver)


# -- snapshots: internal qcow2 snapshots of a booted guest (memory included), seen by qemu-img in
# the guest's own disk file; revert in place; a stopped guest stays stopped; delete removes it.


def _qemu_snapshots(host, name) -> str:
    disk = host.storagePoolLookupByName(REAL_POOL).storageVolLookupByName(f"{name}-disk.qcow2")
    return subprocess.run(
        ["qemu-img", "snapshot", "-U", "-l", disk.path()], capture_output=True, text=True, check=True
    ).stdout


def test_internal_snapshot_of_a_running_guest_revert_and_delete(host, driver, make_spec):
    # Given a real guest that booted
    spec = make_spec()
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
