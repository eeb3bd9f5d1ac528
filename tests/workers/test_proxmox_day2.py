"""Proxmox resize and rebuild against fakepve (in process, tasks finish at once). QEMU's
``PUT resize`` is the one tests/fakepve_server.py adds (fakepve 0.5 only has LXC's);
pending config, reboot applying it, clone, destroy and LXC resize are fakepve's own."""

import pytest

from tests.workers.contract import new_key, wait_done
from workers.drivers.base import DriverError, PermanentDriverError, PowerState, ResizeSpec

from .test_proxmox_driver import task_types

NETWORK = {"ipv4": {"address": "203.0.113.10", "prefix_length": 24, "gateway": "203.0.113.1"}, "dns": ["1.1.1.1"]}


def _config(driver, vmid, kind="qemu"):
    return driver.client.get(f"nodes/pve1/{kind}/{vmid}/config")


def _create(driver, proxmox_spec, **overrides):
    spec = proxmox_spec(**overrides)
    status = wait_done(driver, driver.create(spec), 10)
    return spec, status.vm.backend_id


def test_qemu_resize_sets_pending_sizes_grows_disk_and_reboots_to_apply(pve, proxmox_driver, proxmox_spec):
    driver = proxmox_driver()
    _, vmid = _create(driver, proxmox_spec, vcpus=2, memory_mib=1024, disk_gib=10)
    before = len(task_types(pve, vmid))

    status = wait_done(driver, driver.resize(vmid, spec=ResizeSpec(vcpus=4, memory_mib=2048, disk_gib=20)), 10)

    assert status.vm.power_state == PowerState.RUNNING
    assert task_types(pve, vmid)[before:] == ["qmconfig", "resize", "qmreboot"]
    config = _config(driver, vmid)
    assert (int(config["cores"]), int(config["memory"])) == (4, 2048) and "size=20G" in config["scsi0"]
    assert not [row for row in driver.client.get(f"nodes/pve1/qemu/{vmid}/pending") if "pending" in row]

    # Again (a resubmit after a crash): nothing is left to do, no task runs
    assert driver.resize(vmid, spec=ResizeSpec(vcpus=4, memory_mib=2048, disk_gib=20)).done
    assert len(task_types(pve, vmid)) == before + 3

    # A smaller disk is refused before anything is sent
    with pytest.raises(PermanentDriverError) as refused:
        driver.resize(vmid, spec=ResizeSpec(vcpus=1, memory_mib=512, disk_gib=10))
    assert refused.value.code == "disk_shrink" and "only grow" in refused.value.message
    assert len(task_types(pve, vmid)) == before + 3


def test_qemu_disk_only_resize_and_stopped_guest_need_no_reboot(pve, proxmox_driver, proxmox_spec):
    driver = proxmox_driver()
    _, vmid = _create(driver, proxmox_spec, vcpus=2, memory_mib=1024, disk_gib=10)
    before = len(task_types(pve, vmid))
    wait_done(driver, driver.resize(vmid, spec=ResizeSpec(vcpus=2, memory_mib=1024, disk_gib=12)), 10)
    assert task_types(pve, vmid)[before:] == ["resize"]

    wait_done(driver, driver.stop(vmid, force=True), 10)
    before = len(task_types(pve, vmid))
    status = wait_done(driver, driver.resize(vmid, spec=ResizeSpec(vcpus=3, memory_mib=1536, disk_gib=12)), 10)
    assert task_types(pve, vmid)[before:] == ["qmconfig"] and status.vm.power_state == PowerState.STOPPED
    assert (int(_config(driver, vmid)["cores"]), int(_config(driver, vmid)["memory"])) == (3, 1536)


def test_fakepve_qemu_resize_refuses_a_shrink_like_pve(pve, proxmox_driver, proxmox_spec):
    driver = proxmox_driver()
    _, vmid = _create(driver, proxmox_spec, disk_gib=10)
    with pytest.raises(DriverError, match="shrinking disks is not supported"):
        driver.client.put(f"nodes/pve1/qemu/{vmid}/resize", disk="scsi0", size="8G")
    with pytest.raises(DriverError, match="you can't resize a cdrom"):
        driver.client.put(f"nodes/pve1/qemu/{vmid}/resize", disk="ide2", size="+1G")
    upid = driver.client.put(f"nodes/pve1/qemu/{vmid}/resize", disk="scsi0", size="+2G")
    assert driver.client.get(f"nodes/pve1/tasks/{upid}/status")["exitstatus"] == "OK"
    assert "size=12G" in _config(driver, vmid)["scsi0"]


def test_container_resize_is_live(pve, proxmox_driver, proxmox_spec):
    driver = proxmox_driver()
    _, vmid = _create(driver, proxmox_spec, guest_type="container", vcpus=1, memory_mib=512, disk_gib=8)
    before = len(task_types(pve, vmid))
    status = wait_done(driver, driver.resize(vmid, spec=ResizeSpec(vcpus=2, memory_mib=1024, disk_gib=10)), 10)
    assert status.vm.power_state == PowerState.RUNNING
    assert task_types(pve, vmid)[before:] == ["resize"]  # config is synchronous for containers; no restart
    config = _config(driver, vmid, "lxc")
    assert (int(config["cores"]), int(config["memory"])) == (2, 1024) and "size=10G" in config["rootfs"]


def test_rebuild_recreates_under_the_same_vmid_keeping_address_and_mac(pve, proxmox_driver, proxmox_spec):
    driver = proxmox_driver()
    spec, vmid = _create(driver, proxmox_spec, network=NETWORK)
    old = _config(driver, vmid)
    before = len(task_types(pve, vmid))

    key = new_key()
    rebuild = proxmox_spec(name=spec.name, network=NETWORK, idempotency_key=key, ssh_public_key="ssh-ed25519 AAAAnew n")
    status = wait_done(driver, driver.rebuild(vmid, spec=rebuild), 10)

    assert status.vm.backend_id == vmid and status.vm.power_state == PowerState.RUNNING
    assert task_types(pve, vmid)[before:] == ["qmstop", "qmdestroy", "qmconfig", "resize", "qmstart"]
    assert [t["type"] for t in pve.tasklog if t["type"] == "qmclone"][-1:] == ["qmclone"]
    new = _config(driver, vmid)
    assert new["ipconfig0"] == old["ipconfig0"] == "ip=203.0.113.10/24,gw=203.0.113.1"
    assert new["net0"] == old["net0"]  # same MAC
    assert key in new["description"] and "AAAAnew" in new["sshkeys"].replace("%20", " ")
    assert sum(1 for vm in driver.list_all() if vm.backend_id == vmid) == 1


def test_rebuild_resubmitted_after_a_crash_finishes_without_a_second_clone(pve, proxmox_driver, proxmox_spec):
    driver = proxmox_driver()
    spec, vmid = _create(driver, proxmox_spec, network=NETWORK)
    rebuild = proxmox_spec(name=spec.name, network=NETWORK, idempotency_key=new_key())

    # The first attempt gets as far as the clone (stop, destroy, clone), then the worker dies
    task = driver.rebuild(vmid, spec=rebuild)
    while task.data["steps"][0] != "configure":
        task = driver.poll(task).task
    clones = sum(1 for t in pve.tasklog if t["type"] == "qmclone")

    # The resubmit (its handle lost) adopts the clone carrying the key: configure, resize, start
    status = wait_done(driver, driver.rebuild(vmid, spec=rebuild), 10)
    assert status.vm.power_state == PowerState.RUNNING and status.vm.backend_id == vmid
    assert sum(1 for t in pve.tasklog if t["type"] == "qmclone") == clones
    assert _config(driver, vmid)["ipconfig0"] == "ip=203.0.113.10/24,gw=203.0.113.1"

    # A crash between destroy and clone leaves the VMID free: the resubmit clones under it again
    other = proxmox_spec(name=spec.name, network=NETWORK, idempotency_key=new_key())
    task = driver.rebuild(vmid, spec=other)
    while task.data["steps"][0] != "clone":
        task = driver.poll(task).task
    status = wait_done(driver, driver.rebuild(vmid, spec=other), 10)
    assert status.vm.backend_id == vmid and status.vm.power_state == PowerState.RUNNING
    assert other.idempotency_key in _config(driver, vmid)["description"]


def test_rebuild_refuses_a_guest_with_snapshots(pve, proxmox_driver, proxmox_spec):
    driver = proxmox_driver()
    spec, vmid = _create(driver, proxmox_spec)
    wait_done(driver, driver.snapshot_create(vmid, ref="cp-1"), 10)
    with pytest.raises(PermanentDriverError) as refused:
        driver.rebuild(vmid, spec=proxmox_spec(name=spec.name, idempotency_key=new_key()))
    assert refused.value.code == "has_snapshots"
    assert driver.get(vmid).power_state == PowerState.RUNNING
