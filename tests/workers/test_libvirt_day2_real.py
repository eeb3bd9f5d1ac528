"""libvirt resize and rebuild, real tier: the libvirtd + QEMU (TCG) host of .ci/libvirt-setup.sh
booting the busybox guest. What QEMU itself runs is read through its monitor (QMP), not from
libvirt's XML. Fails (never skips) when that host is not there."""

import dataclasses
import json
import time
from xml.etree import ElementTree

import libvirt
import libvirt_qemu
import pytest

from tests.workers.contract import new_key, wait_done
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
from workers.drivers.base import PermanentDriverError, PowerState, ResizeSpec
from workers.drivers.libvirt.domain import domain_name
from workers.drivers.libvirt.rebuild import LibvirtRebuild

GIB = 1024**3


@pytest.fixture(scope="module")
def host():
    yield from real_host()


@pytest.fixture
def driver(host):
    driver = libvirt_driver("libvirt-real", REAL_SETTINGS, cloud_init=True)
    yield driver
    delete_ours(driver)


@pytest.fixture
def make_spec():
    return spec_factory(GUEST_IMAGE_REF)


def qmp(dom, command: str) -> dict:
    return json.loads(libvirt_qemu.qemuMonitorCommand(dom, json.dumps({"execute": command}), 0))["return"]


def qemu_sizes(dom) -> dict:
    """vCPUs, memory and the vda image size as the running QEMU process has them."""
    vda = next(b for b in qmp(dom, "query-block") if "virtio-disk0" in b.get("qdev", ""))
    return {
        "vcpus": len(qmp(dom, "query-cpus-fast")),
        "memory_mib": qmp(dom, "query-memory-size-summary")["base-memory"] // 2**20,
        "disk_gib": vda["inserted"]["image"]["virtual-size"] / GIB,
    }


def _id(host, backend_id) -> int:
    return host.lookupByUUIDString(backend_id).ID()  # a virDomain keeps the id it was looked up with


def _boot(driver, make_spec, **overrides):
    spec = make_spec(**overrides)
    backend_id = wait_done(driver, driver.create(spec), 90).vm.backend_id
    wait_serial(domain_name(spec), "GUEST-READY")
    return spec, backend_id


def test_resize_grows_the_disk_live_and_restarts_for_cpu_and_memory(host, driver, make_spec):
    spec, backend_id = _boot(driver, make_spec)
    name = domain_name(spec)
    dom = host.lookupByUUIDString(backend_id)
    assert qemu_sizes(dom) == {"vcpus": 1, "memory_mib": 128, "disk_gib": 1}
    first_id = _id(host, backend_id)

    # A disk-only grow happens under the running guest: same QEMU process, new size
    started = time.monotonic()
    task = driver.resize(backend_id, spec=ResizeSpec(vcpus=1, memory_mib=128, disk_gib=2))
    assert task.done
    live_grow = time.monotonic() - started
    assert _id(host, backend_id) == first_id and qemu_sizes(dom)["disk_gib"] == 2

    # vCPU and memory: a clean ACPI shutdown, the definition changed, started again
    started = time.monotonic()
    status = wait_done(driver, driver.resize(backend_id, spec=ResizeSpec(vcpus=2, memory_mib=256, disk_gib=3)), 120)
    restart = time.monotonic() - started
    assert status.vm.power_state == PowerState.RUNNING
    assert "GUEST-POWEROFF" in serial_text(name), (status, serial_text(name))
    assert _id(host, backend_id) != first_id, (first_id, _id(host, backend_id))
    wait_serial(name, "GUEST-READY", count=2)
    assert qemu_sizes(dom) == {"vcpus": 2, "memory_mib": 256, "disk_gib": 3}
    vcpu = ElementTree.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).find("vcpu")
    assert vcpu.text == "2" and vcpu.get("current") in (None, "2")  # maximum = current

    # The same resize again (a retry) changes nothing: no second restart
    second_id = _id(host, backend_id)
    assert driver.resize(backend_id, spec=ResizeSpec(vcpus=2, memory_mib=256, disk_gib=3)).done
    assert _id(host, backend_id) == second_id

    # A smaller disk is refused before anything changes
    with pytest.raises(PermanentDriverError) as refused:
        driver.resize(backend_id, spec=ResizeSpec(vcpus=1, memory_mib=128, disk_gib=2))
    assert refused.value.code == "disk_shrink" and "only grow" in refused.value.message
    assert _id(host, backend_id) == second_id and qemu_sizes(dom) == {"vcpus": 2, "memory_mib": 256, "disk_gib": 3}
    print(f"\nlibvirt resize: live disk grow {live_grow:.2f}s, vCPU/memory with restart {restart:.2f}s")


def test_resize_of_a_stopped_guest_stays_stopped_and_shrinks_memory(host, driver, make_spec):
    spec, backend_id = _boot(driver, make_spec, vcpus=2, memory_mib=256)
    assert driver.stop(backend_id, force=True).done
    task = driver.resize(backend_id, spec=ResizeSpec(vcpus=1, memory_mib=192, disk_gib=2))
    assert task.done and driver.get(backend_id).power_state == PowerState.STOPPED
    dom = host.lookupByUUIDString(backend_id)
    volume = host.storagePoolLookupByName(REAL_POOL).storageVolLookupByName(f"{domain_name(spec)}-disk.qcow2")
    assert volume.info()[1] == 2 * GIB
    driver.start(backend_id)
    assert qemu_sizes(dom) == {"vcpus": 1, "memory_mib": 192, "disk_gib": 2}


def _our_volumes(host, name):
    pool = host.storagePoolLookupByName(REAL_POOL)
    pool.refresh(0)
    return sorted(v for v in pool.listVolumes() if v.startswith(name))


def _identity(dom) -> str:
    """The persistent definition without what a rebuild replaces (disk source, our metadata)."""
    root = ElementTree.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    root.remove(root.find("metadata"))
    for disk in root.findall("devices/disk"):
        disk.remove(disk.find("source"))
    return ElementTree.tostring(root, encoding="unicode")


def test_rebuild_swaps_disk_and_seed_keeps_identity(host, driver, make_spec):
    spec, backend_id = _boot(driver, make_spec, ssh_public_key="ssh-ed25519 AAAAold old@ci")
    name = domain_name(spec)
    dom = host.lookupByUUIDString(backend_id)
    assert _our_volumes(host, name) == [f"{name}-disk.qcow2", f"{name}-seed.iso"]
    uuid_before = dom.UUIDString()

    key = new_key()
    rebuild = dataclasses.replace(spec, idempotency_key=key, ssh_public_key="ssh-ed25519 AAAAnew new@ci")
    started = time.monotonic()
    status = wait_done(driver, driver.rebuild(backend_id, spec=rebuild), 90)
    took = time.monotonic() - started
    tag = key.replace("-", "")[:12]
    assert status.vm.power_state == PowerState.RUNNING and dom.UUIDString() == uuid_before
    assert _our_volumes(host, name) == [f"{name}-disk-{tag}.qcow2", f"{name}-seed-{tag}.iso"]  # one disk, one seed
    wait_serial(name, "GUEST-READY", count=2)  # booted from the new disk
    block = libvirt_qemu.qemuMonitorCommand(dom, "info block", libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP)
    assert f"{name}-disk-{tag}.qcow2" in block and f"{name}-seed-{tag}.iso" in block
    assert driver.find_by_key(spec.idempotency_key).backend_id == backend_id  # the create's key is kept

    # The same rebuild again (a retry after the operation ended) does nothing more
    restarted = _id(host, backend_id)
    wait_done(driver, driver.rebuild(backend_id, spec=rebuild), 90)
    assert _id(host, backend_id) == restarted
    assert _our_volumes(host, name) == [f"{name}-disk-{tag}.qcow2", f"{name}-seed-{tag}.iso"]

    # Delete removes the rebuilt volumes too
    driver.delete(backend_id)
    assert _our_volumes(host, name) == []
    print(f"\nlibvirt rebuild (overlay + seed + define + start): {took:.2f}s")


def test_rebuild_interrupted_before_and_after_its_switch_ends_with_one_disk(host, driver, make_spec, monkeypatch):
    spec, backend_id = _boot(driver, make_spec)
    name = domain_name(spec)
    dom = host.lookupByUUIDString(backend_id)
    identity = _identity(dom)
    key = new_key()
    tag = key.replace("-", "")[:12]
    rebuild = dataclasses.replace(spec, idempotency_key=key)

    # A first attempt dies after writing the new disk, before the switch: the guest was
    # powered off and the new volume is orphaned (crash simulated by a failing define)
    real_define = libvirt.virConnect.defineXML
    monkeypatch.setattr(libvirt.virConnect, "defineXML", lambda self, xml: (_ for _ in ()).throw(SystemExit))
    with pytest.raises(SystemExit):
        driver.rebuild(backend_id, spec=rebuild)
    assert f"{name}-disk-{tag}.qcow2" in _our_volumes(host, name) and f"{name}-disk.qcow2" in _our_volumes(host, name)
    assert driver.get(backend_id).power_state == PowerState.STOPPED
    monkeypatch.setattr(libvirt.virConnect, "defineXML", real_define)

    # The retry dies after the switch, before removing the old disk
    monkeypatch.setattr(LibvirtRebuild, "_rebuild_clean", lambda *a: (_ for _ in ()).throw(SystemExit))
    with pytest.raises(SystemExit):
        driver.rebuild(backend_id, spec=rebuild)
    monkeypatch.undo()

    # The third attempt only cleans up and starts the guest (it ran before the rebuild)
    status = wait_done(driver, driver.rebuild(backend_id, spec=rebuild), 90)
    assert status.vm.power_state == PowerState.RUNNING
    assert [v for v in _our_volumes(host, name) if "-disk" in v] == [f"{name}-disk-{tag}.qcow2"]
    assert _identity(dom) == identity  # same uuid, name, sizes, NIC (MAC: lease / address), serial
    wait_serial(name, "GUEST-READY", count=2)


def test_rebuild_refuses_a_guest_with_snapshots(host, driver, make_spec):
    spec, backend_id = _boot(driver, make_spec)
    wait_done(driver, driver.snapshot_create(backend_id, ref="cp-keep"), 90)
    rebuild = dataclasses.replace(spec, idempotency_key=new_key())
    with pytest.raises(PermanentDriverError) as refused:
        driver.rebuild(backend_id, spec=rebuild)
    assert refused.value.code == "has_snapshots"
    assert driver.get(backend_id).power_state == PowerState.RUNNING
    assert _our_volumes(host, domain_name(spec)) == [f"{domain_name(spec)}-disk.qcow2"]
