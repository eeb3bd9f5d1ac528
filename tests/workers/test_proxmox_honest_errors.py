"""Proxmox answers HTTP 500 to requests that can never work (PVE validates with `die` in the API
handler): those fail at once with Proxmox's message instead of being retried as outages. And an
HA-managed guest is followed until HA has really started or stopped it.

Against fakepve: its error catalogue is PVE's real messages; its HA model answers start/stop of
an HA-managed guest with an ``hastart``/``hastop`` task that ends at once and changes the guest
``ha_delay`` PVE seconds later, reporting ``hastate`` in ``cluster/resources``, as PVE does.
"""

import pytest

from tests.fakepve_server import QEMU_TEMPLATE
from tests.workers.contract import wait_done
from workers.drivers.base import PermanentDriverError, PowerState, TransientDriverError
from workers.drivers.proxmox.client import Code


def clone_tasks(pve) -> int:
    return sum(1 for t in pve.tasklog if t["type"] == "qmclone")


def test_an_image_that_is_not_a_template_is_refused_before_anything_is_made(pve, proxmox_driver, proxmox_spec):
    # Given an image pointing at an ordinary (stopped) guest instead of a template
    pve.add_vm(120, "golden-but-not-a-template", config={"scsi0": "local-lvm:vm-120-disk-0,size=4G"})

    # When a VM is created from it, then it fails permanently with the reason, and no clone started
    with pytest.raises(PermanentDriverError) as failed:
        proxmox_driver().create(proxmox_spec(image_ref="120"))
    assert failed.value.code == Code.INVALID
    assert "not a template" in failed.value.message and "qm template 120" in failed.value.message
    assert clone_tasks(pve) == 0


@pytest.mark.parametrize(
    "error, message",
    [
        ("storage_does_not_exist", "storage 'local' does not exist"),
        ("storage_not_available", "storage 'local' is not available on node 'pve1'"),
        ("can_t_clone_uses_local", "can't clone VM to node 'pve2' (VM uses local storage)"),
        ("hostname_lookup_failed", "hostname lookup 'pve1' failed"),
    ],
)
def test_proxmox_validation_errors_on_http_500_are_permanent(pve, proxmox_driver, proxmox_spec, error, message):
    pve.fail("POST", f"/nodes/pve1/qemu/{QEMU_TEMPLATE}/clone", error=error)

    with pytest.raises(PermanentDriverError) as failed:
        proxmox_driver().create(proxmox_spec())
    assert failed.value.code == Code.INVALID
    assert message in failed.value.message


def test_a_template_without_base_volumes_cannot_be_linked_cloned_and_says_so(pve, proxmox_driver, proxmox_spec):
    # Given a template whose disk is not a base volume (Proxmox: no linked clones of it)
    pve.add_vm(9100, "odd-template", template=True, config={"scsi0": "local-lvm:vm-9100-disk-0,size=4G"})

    with pytest.raises(PermanentDriverError) as failed:
        proxmox_driver(clone_mode="linked").create(proxmox_spec(image_ref="9100"))
    assert "Linked clone feature is not supported" in failed.value.message


def test_an_unknown_node_is_a_configuration_error(pve, proxmox_driver, proxmox_spec):
    with pytest.raises(PermanentDriverError) as failed:
        proxmox_driver(node="pve9").create(proxmox_spec())
    assert "pve9" in failed.value.message


def test_a_lost_quorum_is_still_an_outage(pve, proxmox_driver, proxmox_spec):
    pve.fail("POST", f"/nodes/pve1/qemu/{QEMU_TEMPLATE}/clone", error="no_quorum")

    with pytest.raises(TransientDriverError):
        proxmox_driver().create(proxmox_spec())


# -- HA-managed guests ---------------------------------------------------------------------


def ha_guest(pve, vmid: int, *, status: str):
    vm = pve.add_vm(vmid, f"ha-{vmid}", status=status, config={"scsi0": f"local-lvm:vm-{vmid}-disk-0,size=4G"})
    vm.ha_state = "started" if status == "running" else "stopped"
    return vm


@pytest.mark.fakepve(time_scale=0.05)  # HA acts ha_delay (10) PVE seconds after the request: 0.5 s
@pytest.mark.parametrize("action, before, after", [("start", "stopped", "running"), ("stop", "running", "stopped")])
def test_an_ha_managed_guest_is_followed_until_ha_has_really_changed_it(pve, proxmox_driver, action, before, after):
    # Given a guest under Proxmox HA
    vm = ha_guest(pve, 180, status=before)
    driver = proxmox_driver()

    # When it is started/stopped: Proxmox queues an HA request whose task ends OK at once
    task = getattr(driver, action)("180")
    assert task.ref.split(":")[5] in ("hastart", "hastop")

    # Then the action is done only once the guest really is in the new state
    status = wait_done(driver, task, timeout=30)
    assert vm.status == after
    assert status.vm.power_state == (PowerState.RUNNING if after == "running" else PowerState.STOPPED)


@pytest.mark.fakepve(time_scale=0.05)
def test_deleting_an_ha_managed_guest_waits_for_ha_to_stop_it_before_destroying(pve, proxmox_driver):
    ha_guest(pve, 182, status="running")
    driver = proxmox_driver()

    status = wait_done(driver, driver.delete("182"), timeout=30)

    assert status.done and pve.vm(182) is None
    assert [t["type"] for t in pve.tasklog if t["id"] == "182"][-2:] == ["hastop", "qmdestroy"]


@pytest.mark.fakepve(time_scale=0.05)
def test_ha_giving_up_on_a_guest_fails_the_action_with_its_state(pve, proxmox_driver):
    # Given a guest HA will not manage to start (it ends in HA's error state)
    vm = ha_guest(pve, 184, status="stopped")
    pve.ha_delay = 10_000
    driver = proxmox_driver()
    task = driver.start("184")
    status = driver.poll(task)
    assert not status.done
    vm.ha_state = "error"

    with pytest.raises(PermanentDriverError) as failed:
        wait_done(driver, status.task or task, timeout=30)
    assert failed.value.code == "ha_error" and "'error'" in failed.value.message


@pytest.mark.fakepve(time_scale=0.05)
def test_ha_not_acting_within_ha_timeout_fails_the_action(pve, proxmox_driver):
    ha_guest(pve, 186, status="stopped")
    pve.ha_delay = 10_000
    driver = proxmox_driver(ha_timeout_seconds=0.5)

    with pytest.raises(PermanentDriverError) as failed:
        wait_done(driver, driver.start("186"), timeout=30)
    assert failed.value.code == "ha_timeout" and "stopped" in failed.value.message
