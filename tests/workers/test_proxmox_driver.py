"""The Proxmox driver against fakepve (a fake Proxmox VE API with PVE 9's schema and async UPID tasks).

fakepve's in-process fixture finishes every task at once (time_scale 0); the
failure scenarios use its fault injection: lost quorum, held config locks,
guests that ignore ACPI, named Proxmox errors (``pve.fail(..., error=...)``).
"""

import pytest

from tests.fakepve_server import LXC_TEMPLATE, OSTEMPLATE, QEMU_TEMPLATE
from tests.fixtures.proxmox import SSH_KEY
from tests.workers.contract import DriverContract, wait_done
from workers.drivers.base import PermanentDriverError, PowerState, TransientDriverError
from workers.drivers.proxmox.client import Code
from workers.drivers.proxmox.guests import key_tag


def task_types(pve, vmid=None) -> list[str]:
    """The Proxmox task types that ran (for one guest id), oldest first."""
    return [t["type"] for t in pve.tasklog if vmid is None or t["id"] == str(vmid)]


def resource_calls(pve) -> int:
    return sum(1 for method, path, _ in pve.requests if path.endswith("/cluster/resources"))


@pytest.fixture
def unknown_backend_id():
    return "4242"


class TestQemuContract(DriverContract):
    poll_timeout = 10

    @pytest.fixture
    def driver(self, proxmox_driver):
        return proxmox_driver()

    @pytest.fixture
    def make_spec(self, proxmox_spec):
        return proxmox_spec


class TestLxcContract(TestQemuContract):
    console_serves = False  # containers' consoles (lxc termproxy) are not offered yet; fakepve has none either

    @pytest.fixture
    def make_spec(self, proxmox_spec):
        return lambda **overrides: proxmox_spec(guest_type="container", **overrides)


# -- lifecycles -----------------------------------------------------------------------


def test_qemu_clone_configure_start_stop_delete(pve, proxmox_driver, proxmox_spec):
    driver = proxmox_driver(bridge="vmbr1", ci_user="debian")
    spec = proxmox_spec(vcpus=2, memory_mib=2048)

    # When the VM is created, the handle is the clone's UPID and each poll hands over the next step's
    task = driver.create(spec)
    assert task.ref.startswith("UPID:pve1:") and ":qmclone:" in task.ref
    status = driver.poll(task)
    assert not status.done and ":qmconfig:" in status.task.ref and status.message == "configuring"
    status = wait_done(driver, status.task)

    # Then it runs, configured from the plan and carrying the key in its tags and description
    vmid = int(status.vm.backend_id)
    assert status.vm.power_state == PowerState.RUNNING and status.vm.idempotency_key == spec.idempotency_key
    config = pve.vm(vmid).config
    assert (config["cores"], config["memory"], config["name"]) == ("2", "2048", "web-1")
    assert config["tags"] == f"debian;{key_tag(spec.idempotency_key)}"
    assert spec.idempotency_key in config["description"]
    assert config["ciuser"] == "debian" and config["ipconfig0"] == "ip=dhcp"
    assert config["sshkeys"] == SSH_KEY.replace(" ", "%20").replace("@", "%40")
    clone_mac = config["net0"].split(",")[0]
    assert clone_mac.startswith("virtio=") and clone_mac != "virtio=BC:24:11:00:90:00"
    assert config["net0"] == f"{clone_mac},bridge=vmbr1"
    assert "base-9000-disk-0" not in config["scsi0"]  # a linked clone got its own disk
    assert task_types(pve, QEMU_TEMPLATE) == ["qmclone"]
    assert task_types(pve, vmid) == ["qmconfig", "resize", "qmstart"]
    # the 4G template disk is grown to the plan's 10G (QEMU resize: tests/fakepve_server.py)
    assert ("PUT", f"/api2/json/nodes/pve1/qemu/{vmid}/resize", b"disk=scsi0&size=10G") in pve.requests

    # stop is a graceful shutdown; delete purges
    assert driver.poll(driver.stop(str(vmid))).vm.power_state == PowerState.STOPPED
    assert wait_done(driver, driver.delete(str(vmid))).vm is None
    assert task_types(pve, vmid)[-2:] == ["qmshutdown", "qmdestroy"]
    assert pve.vm(vmid) is None and driver.get(str(vmid)) is None


def test_lxc_clone_configure_start_stop_delete(pve, proxmox_driver, proxmox_spec):
    driver = proxmox_driver()
    spec = proxmox_spec(guest_type="container", vcpus=3, memory_mib=768, disk_gib=12)

    status = wait_done(driver, driver.create(spec))

    vmid = int(status.vm.backend_id)
    config = pve.ct(vmid).config
    assert (config["cores"], config["memory"], config["hostname"]) == (3, 768, "web-1")
    assert config["tags"] == key_tag(spec.idempotency_key)
    assert "size=12G" in config["rootfs"]  # grown from the template's 4G
    assert task_types(pve, LXC_TEMPLATE) == ["vzclone"]
    assert task_types(pve, vmid) == ["resize", "vzstart"]  # container config is synchronous
    assert status.vm.extra["type"] == "lxc" and status.vm.power_state == PowerState.RUNNING

    wait_done(driver, driver.stop(str(vmid)))
    assert pve.ct(vmid).status == "stopped"
    wait_done(driver, driver.delete(str(vmid)))
    assert pve.ct(vmid) is None
    assert task_types(pve, vmid)[-2:] == ["vzshutdown", "vzdestroy"]


def test_container_from_an_os_template_takes_the_ssh_key(pve, proxmox_driver, proxmox_spec):
    driver = proxmox_driver(storage="local-lvm", bridge="vmbr0")
    spec = proxmox_spec(guest_type="container", image_ref=OSTEMPLATE, ssh_public_key=SSH_KEY)

    status = wait_done(driver, driver.create(spec))

    vmid = int(status.vm.backend_id)
    create = next(body for method, path, body in pve.requests if method == "POST" and path.endswith("/pve1/lxc"))
    assert b"ssh-public-keys=ssh-ed25519" in create
    assert pve.ct(vmid).config["tags"] == key_tag(spec.idempotency_key)
    assert task_types(pve, vmid) == ["vzcreate", "vzstart"]


def test_deleting_a_running_guest_powers_it_off_first(pve, proxmox_driver, proxmox_spec):
    driver = proxmox_driver()
    vmid = wait_done(driver, driver.create(proxmox_spec())).vm.backend_id
    wait_done(driver, driver.delete(vmid))
    assert task_types(pve, vmid)[-2:] == ["qmstop", "qmdestroy"]
    destroy = [path for method, path, _ in pve.requests if method == "DELETE"]
    assert destroy == [f"/api2/json/nodes/pve1/qemu/{vmid}"]


# -- idempotency -----------------------------------------------------------------------


def test_create_after_a_crash_between_clone_and_configure_adopts_the_clone(pve, proxmox_driver, proxmox_spec):
    # Given a create whose worker died after submitting the clone (no tag yet, only the description)
    driver = proxmox_driver()
    spec = proxmox_spec()
    first = driver.create(spec)
    assert key_tag(spec.idempotency_key) not in pve.vm(int(first.backend_id)).config.get("tags", "")

    # When the operation is executed again from scratch
    again = driver.create(spec)

    # Then it finishes the same guest instead of cloning a second one
    assert again.backend_id == first.backend_id and again.ref.startswith("adopted:")
    status = wait_done(driver, again)
    assert status.vm.backend_id == first.backend_id and status.vm.power_state == PowerState.RUNNING
    assert task_types(pve, QEMU_TEMPLATE) == ["qmclone"]
    assert [g.backend_id for g in driver.list_all()] == [first.backend_id]
    assert driver.find_by_key(spec.idempotency_key).backend_id == first.backend_id


def test_polling_the_same_handle_again_after_a_crash_is_harmless(pve, proxmox_driver, proxmox_spec):
    driver = proxmox_driver()
    task = driver.create(proxmox_spec())
    driver.poll(task)  # submitted the configure step; pretend the worker died before storing its handle
    status = wait_done(driver, task)
    assert status.vm.power_state == PowerState.RUNNING
    assert len([g for g in driver.list_all()]) == 1


# -- VMID race, locks, task errors, shutdown timeout, quorum -----------------------------


@pytest.mark.parametrize("guest_type", ["vm", "container"])
def test_vmid_taken_between_nextid_and_clone_takes_a_new_id(pve, proxmox_driver, proxmox_spec, guest_type):
    # Given another client that creates a guest with the id cluster/nextid just gave us
    driver = proxmox_driver()
    get = driver.client.get
    raced = []

    def racing_get(path, **params):
        answer = get(path, **params)
        if path == "cluster/nextid" and not params and not raced:
            raced.append(int(answer))
            pve.add_vm(int(answer), "someone-elses")
        return answer

    driver.client.get = racing_get

    # When we create a guest
    status = wait_done(driver, driver.create(proxmox_spec(guest_type=guest_type)))

    # Then the clone was retried under the next id and the other guest is untouched
    assert raced == [100] and status.vm.backend_id == "101"
    assert pve.vm(100).name == "someone-elses"


def test_clone_refused_as_already_existing_is_retried_with_a_new_id(pve, proxmox_driver, proxmox_spec):
    pve.fail("POST", f"/nodes/pve1/qemu/{QEMU_TEMPLATE}/clone", error="unable_create_config_file_already", times=1)
    driver = proxmox_driver()
    status = wait_done(driver, driver.create(proxmox_spec()))
    assert status.vm.backend_id == "100" and task_types(pve, QEMU_TEMPLATE) == ["qmclone"]


def test_config_lock_timeout_on_submit_is_transient_and_retried(pve, proxmox_driver, proxmox_spec):
    driver = proxmox_driver()
    vmid = wait_done(driver, driver.create(proxmox_spec())).vm.backend_id
    wait_done(driver, driver.stop(vmid))
    pve.fail("POST", f"/nodes/pve1/qemu/{vmid}/status/start", error="config_lock_timeout", times=1)

    with pytest.raises(TransientDriverError) as raised:
        driver.start(vmid)
    assert raised.value.code == Code.LOCK_TIMEOUT and "can't lock file" in raised.value.message

    # the engine retries the submit: the lock is free now
    assert wait_done(driver, driver.start(vmid)).vm.power_state == PowerState.RUNNING


def test_task_ending_in_a_lock_timeout_is_resubmitted_after_a_backoff(pve, proxmox_driver, proxmox_spec):
    # Given a stopped VM whose config lock another task holds
    driver = proxmox_driver(step_retry_seconds=0.01)
    vmid = wait_done(driver, driver.create(proxmox_spec())).vm.backend_id
    wait_done(driver, driver.stop(vmid))
    pve.vm(int(vmid)).lock_holder = "scenario"

    # When we start it, the qmstart task ends with Proxmox's lock timeout
    task = driver.start(vmid)
    status = driver.poll(task)
    assert not status.done and "can't lock file" in status.message and status.task.data["retries"] == 1

    # Then, once the lock is free, the retry starts it
    pve.release_config_lock(int(vmid))
    assert wait_done(driver, status.task).vm.power_state == PowerState.RUNNING
    assert task_types(pve, vmid)[-2:] == ["qmstart", "qmstart"]


def test_a_lock_that_never_clears_fails_after_the_step_retries(pve, proxmox_driver, proxmox_spec):
    driver = proxmox_driver(step_retry_seconds=0.001)
    vmid = wait_done(driver, driver.create(proxmox_spec())).vm.backend_id
    wait_done(driver, driver.stop(vmid))
    pve.vm(int(vmid)).lock_holder = "vzdump"
    with pytest.raises(PermanentDriverError, match=r"starting failed after 6 tries: can't lock file"):
        wait_done(driver, driver.start(vmid))


def test_a_task_ending_in_error_fails_with_proxmox_message(pve, proxmox_driver, proxmox_spec):
    # The start step of a create ends with TASK ERROR
    pve.fail("POST", "/nodes/pve1/qemu/100/status/start", error="qemu_exited_code")
    driver = proxmox_driver()
    with pytest.raises(PermanentDriverError) as raised:
        wait_done(driver, driver.create(proxmox_spec()))
    assert raised.value.message == "Proxmox starting failed: QEMU exited with code 1"


def test_start_of_an_existing_guest_that_cannot_start(pve, proxmox_driver):
    vm = pve.add_vm(150, "broken", config={"cores": 1})
    vm.start_error = "kvm: -drive file=/dev/pve/vm-150-disk-0: Could not open: No such file or directory"
    driver = proxmox_driver()
    with pytest.raises(PermanentDriverError, match="Could not open: No such file"):
        wait_done(driver, driver.start("150"))


def test_shutdown_that_times_out_is_followed_by_a_hard_stop(pve, proxmox_driver):
    # Given a VM that ignores ACPI (the shutdown task ends with "got timeout")
    vm = pve.add_vm(160, "stubborn", status="running")
    vm.acpi = False
    driver = proxmox_driver(hard_stop_after_seconds=30)

    # When we stop it
    task = driver.stop("160")
    status = driver.poll(task)
    assert ":qmstop:" in status.task.ref and status.message == "powering off"
    assert wait_done(driver, status.task).vm.power_state == PowerState.STOPPED

    # Then the shutdown waited the plan's timeout, and a power-off followed
    shutdown = next(body for method, path, body in pve.requests if path.endswith("/status/shutdown"))
    assert shutdown == b"timeout=30"
    assert task_types(pve, 160) == ["qmshutdown", "qmstop"]


def test_container_that_does_not_stop_in_time_is_powered_off(pve, proxmox_driver):
    ct = pve.add_ct(161, "slow-ct", status="running")
    ct.shutdown_secs = 600
    driver = proxmox_driver()
    assert wait_done(driver, driver.stop("161")).vm.power_state == PowerState.STOPPED
    assert task_types(pve, 161) == ["vzshutdown", "vzstop"]


def test_plan_that_never_forces_fails_a_timed_out_shutdown(pve, proxmox_driver):
    pve.add_vm(162, "stubborn", status="running").acpi = False
    driver = proxmox_driver()
    with pytest.raises(PermanentDriverError, match="did not shut down within 300s and its plan never forces"):
        wait_done(driver, driver.stop("162", hard_stop_after=0))
    assert pve.vm(162).status == "running" and task_types(pve, 162) == ["qmshutdown"]


def test_lost_quorum_is_transient(pve, proxmox_driver, proxmox_spec):
    driver = proxmox_driver()
    pve.lose_quorum()
    for action in (lambda: driver.create(proxmox_spec()), lambda: driver.start(str(QEMU_TEMPLATE))):
        with pytest.raises(TransientDriverError) as raised:
            action()
        assert raised.value.code == Code.NO_QUORUM and "no quorum" in raised.value.message
    # reads still work without quorum, and nothing was cloned
    assert driver.list_all() == []
    pve.regain_quorum()
    assert wait_done(driver, driver.create(proxmox_spec())).vm.power_state == PowerState.RUNNING


def test_quorum_lost_between_steps_makes_the_poll_transient(pve, proxmox_driver, proxmox_spec):
    driver = proxmox_driver()
    task = driver.create(proxmox_spec())
    pve.lose_quorum()
    with pytest.raises(TransientDriverError, match="no quorum"):
        driver.poll(task)
    pve.regain_quorum()
    assert wait_done(driver, task).vm.power_state == PowerState.RUNNING


# -- already there -----------------------------------------------------------------------


def test_start_of_running_stop_of_stopped_delete_of_missing_succeed_at_once(pve, proxmox_driver):
    pve.add_vm(170, "on", status="running")
    pve.add_ct(171, "off")
    driver = proxmox_driver()
    assert driver.start("170").done and driver.stop("171").done and driver.delete("4242").done
    assert pve.tasklog == []


def test_race_to_running_counts_as_started(pve, proxmox_driver):
    # Given a stopped VM that someone else starts while our start is submitted
    pve.add_vm(172, "racy")
    pve.fail("POST", "/nodes/pve1/qemu/172/status/start", error="already_running", times=1)
    driver = proxmox_driver()
    task = driver.start("172")
    pve.vm(172).status = "running"
    # Then our task's "already running" counts as started
    assert wait_done(driver, task).vm.power_state == PowerState.RUNNING
    assert pve.tasks[task.ref]["exitstatus"] == "VM 172 already running"


def test_reboot_of_a_stopped_guest_is_refused(pve, proxmox_driver):
    pve.add_vm(173, "off")
    with pytest.raises(PermanentDriverError, match="not running"):
        proxmox_driver().reboot("173")


# -- reads -----------------------------------------------------------------------------


def test_list_all_is_one_call_and_skips_templates(pve, proxmox_driver):
    pve.add_vm(180, "db", status="running", config={"tags": "prod;cp-0123456789abcdef0123456789abcdef"})
    pve.add_ct(181, "cache")
    driver = proxmox_driver()
    before = resource_calls(pve)

    guests = {g.backend_id: g for g in driver.list_all()}

    assert resource_calls(pve) - before == 1 and len(pve.requests) == before + 1
    assert set(guests) == {"180", "181"}
    assert guests["180"].idempotency_key == "01234567-89ab-cdef-0123-456789abcdef"
    assert (guests["181"].power_state, guests["181"].extra["type"]) == (PowerState.STOPPED, "lxc")


def test_get_raises_on_api_errors_and_says_none_only_when_proxmox_confirms(pve, proxmox_driver):
    driver = proxmox_driver()
    pve.fail("GET", "/cluster/resources", 500, "proxy loop detected", times=1)
    with pytest.raises(TransientDriverError):
        driver.get("4242")
    assert driver.get("4242") is None
    # an id this token cannot see is not "gone"
    pve.add_vm(190, "hidden")
    pve.grant("controlplane@pve!workers", "/vms/100", "VM.Audit")
    with pytest.raises(PermanentDriverError, match="cannot see it"):
        driver.get("190")


def test_static_addresses_and_agent_addresses_are_reported(pve, proxmox_driver, proxmox_spec):
    driver = proxmox_driver(ipconfig="ip=192.0.2.50/24,gw=192.0.2.1")
    vm = wait_done(driver, driver.create(proxmox_spec())).vm
    assert vm.ip_addresses == ("192.0.2.50",)
    agent = pve.add_vm(200, "with-agent", status="running", config={"agent": "1", "ipconfig0": "ip=dhcp"})
    agent.agent = {}
    assert driver.get("200").ip_addresses == ("192.0.2.10",)


def test_check_reports_version_nodes_and_tls(pve, proxmox_driver):
    pve.add_node("pve2", online=False)
    facts = proxmox_driver(node="pve3").check()
    assert facts["version"] == "9.0.10" and facts["tls_verified"] is True
    assert [(n["name"], n["status"]) for n in facts["nodes"]] == [("pve1", "online"), ("pve2", "offline")]
    assert "pve3" in facts["warning"]


def test_auto_node_clones_onto_an_online_node(pve, proxmox_driver, proxmox_spec):
    pve.add_node("pve2")
    pve.set_node_offline("pve1")
    driver = proxmox_driver(node="auto")
    data = driver._create_data(proxmox_spec(), "qemu", driver._resources())
    assert (data["node"], data["spec"]["template_node"]) == ("pve2", "pve1")
