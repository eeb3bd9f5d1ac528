"""The driver contract: every hypervisor driver must pass these.

Subclass ``DriverContract`` in a test module and provide two fixtures:
``driver`` (a ready Driver) and ``make_spec`` (a callable returning a VMSpec
with a fresh idempotency key; keyword arguments override fields). Set
``poll_timeout`` for slow back ends.
"""

from __future__ import annotations

import dataclasses
import socket
import time
import uuid

import pytest

from workers.console.upstream import WebSocketClient
from workers.drivers.base import (
    Capability,
    ConsoleProtocol,
    DriverTask,
    HypervisorVM,
    PermanentDriverError,
    PowerState,
    ResizeSpec,
    TaskStatus,
)


def wait_done(driver, task: DriverTask, timeout: float = 60) -> TaskStatus:
    """Poll like the engine does (following replacement handles) until done."""
    deadline = time.monotonic() + timeout
    while True:
        status = driver.poll(task)
        if status.done:
            return status
        if status.task is not None:
            task = status.task
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task.ref} not done after {timeout}s (progress {status.progress})")
        time.sleep(min(max(status.poll_after or 0.1, 0.05), 1.0))


def new_key() -> str:
    return str(uuid.uuid4())


class DriverContract:
    poll_timeout: float = 60
    console_serves = True  # False: the back end declares consoles but runs no guest to serve one
    metrics_counters = True  # False: the back end reports guests but keeps no CPU/disk/network counters

    def _create(self, driver, make_spec, **overrides) -> tuple[HypervisorVM, str]:
        spec = make_spec(**overrides)
        task = driver.create(spec)
        status = wait_done(driver, task, self.poll_timeout)
        backend_id = (status.vm.backend_id if status.vm else None) or task.backend_id
        assert backend_id, "create must reveal the guest's backend id"
        vm = driver.get(backend_id)
        assert vm is not None
        return vm, spec.idempotency_key

    def test_check_reports_facts(self, driver):
        facts = driver.check()
        assert isinstance(facts, dict) and facts

    def test_create_makes_a_running_guest_carrying_the_key(self, driver, make_spec):
        vm, key = self._create(driver, make_spec)
        assert vm.power_state == PowerState.RUNNING
        found = driver.find_by_key(key)
        assert found is not None and found.backend_id == vm.backend_id
        assert vm.backend_id in {g.backend_id for g in driver.list_all()}

    def test_create_is_idempotent_by_key(self, driver, make_spec):
        spec = make_spec()
        first = driver.create(spec)
        wait_done(driver, first, self.poll_timeout)
        second = driver.create(spec)
        status = wait_done(driver, second, self.poll_timeout)
        backend_id = (status.vm.backend_id if status.vm else None) or second.backend_id
        assert backend_id == (first.backend_id or driver.find_by_key(spec.idempotency_key).backend_id)
        carrying = [g for g in driver.list_all() if g.idempotency_key == spec.idempotency_key]
        assert len(carrying) == 1

    def test_stop_start_reboot(self, driver, make_spec):
        vm, _ = self._create(driver, make_spec)
        wait_done(driver, driver.stop(vm.backend_id), self.poll_timeout)
        assert driver.get(vm.backend_id).power_state == PowerState.STOPPED
        # already stopped counts as stopped
        wait_done(driver, driver.stop(vm.backend_id), self.poll_timeout)
        assert driver.get(vm.backend_id).power_state == PowerState.STOPPED
        wait_done(driver, driver.start(vm.backend_id), self.poll_timeout)
        assert driver.get(vm.backend_id).power_state == PowerState.RUNNING
        # already running counts as started
        wait_done(driver, driver.start(vm.backend_id), self.poll_timeout)
        wait_done(driver, driver.reboot(vm.backend_id), self.poll_timeout)
        assert driver.get(vm.backend_id).power_state == PowerState.RUNNING

    def test_delete_and_already_gone(self, driver, make_spec):
        vm, key = self._create(driver, make_spec)
        wait_done(driver, driver.delete(vm.backend_id), self.poll_timeout)
        assert driver.get(vm.backend_id) is None
        assert driver.find_by_key(key) is None
        assert vm.backend_id not in {g.backend_id for g in driver.list_all()}
        # deleting what is gone succeeds
        wait_done(driver, driver.delete(vm.backend_id), self.poll_timeout)

    def test_get_unknown_is_none(self, driver, unknown_backend_id):
        assert driver.get(unknown_backend_id) is None

    def test_console_capability(self, driver, make_spec):
        """``Capability.CONSOLE``: a running guest's screen answers RFB where the driver says;
        a stopped guest's console is refused. Without the capability: always refused."""
        vm, _ = self._create(driver, make_spec)
        if not driver.supports(Capability.CONSOLE) or not self.console_serves:
            with pytest.raises(PermanentDriverError):
                driver.console(vm.backend_id)
            return
        target = driver.console(vm.backend_id, protocol=ConsoleProtocol.VNC)
        assert target.protocol == ConsoleProtocol.VNC
        if target.browser_url:  # the hypervisor's own console page
            assert target.browser_url.startswith(("http://", "https://"))
        elif target.websocket_url:
            upstream = WebSocketClient(headers=target.headers, verify=target.verify).open(target.websocket_url)
            assert upstream.receive().startswith(b"RFB 003.")
            upstream.close()
        else:
            with socket.create_connection((target.host, target.port), timeout=10) as conn:
                assert conn.recv(12).startswith(b"RFB 003.")
        wait_done(driver, driver.stop(vm.backend_id, force=True), self.poll_timeout)
        with pytest.raises(PermanentDriverError):
            driver.console(vm.backend_id)

    def test_metrics_read_every_running_guest_in_one_call(self, driver, make_spec):
        if not driver.supports(Capability.METRICS):
            with pytest.raises(PermanentDriverError):
                driver.metrics()
            return
        vm, _ = self._create(driver, make_spec)
        readings = {reading.backend_id: reading for reading in driver.metrics()}
        reading = readings[vm.backend_id]
        assert reading.power_state == PowerState.RUNNING
        assert reading.at > 0
        if self.metrics_counters:
            assert reading.cpu_time_ns is not None or reading.cpu_fraction is not None
            assert reading.net_rx_bytes is not None and reading.net_rx_bytes >= 0
            assert reading.disk_read_bytes is not None and reading.disk_read_bytes >= 0

    # -- capabilities: each runs against the driver when it declares it; a driver that does not
    # must refuse the call with PermanentDriverError (code "unsupported"), never half-do it.

    def _refuses(self, call) -> None:
        with pytest.raises(PermanentDriverError) as refused:
            call()
        assert refused.value.code == "unsupported"

    def test_snapshots_create_list_revert_delete(self, driver, make_spec):
        if not driver.supports(Capability.SNAPSHOTS):
            self._refuses(lambda: driver.snapshot_create("any", ref="cp-1"))
            return
        vm, _ = self._create(driver, make_spec)
        ref = f"cp-{uuid.uuid4().hex[:8]}"
        wait_done(driver, driver.snapshot_create(vm.backend_id, ref=ref), self.poll_timeout)
        # taking it again (a retry after a crash) finds it: still one
        wait_done(driver, driver.snapshot_create(vm.backend_id, ref=ref), self.poll_timeout)
        assert [s.ref for s in driver.snapshot_list(vm.backend_id)].count(ref) == 1
        wait_done(driver, driver.snapshot_revert(vm.backend_id, ref=ref), self.poll_timeout)
        assert driver.get(vm.backend_id).power_state == PowerState.RUNNING  # as it was
        wait_done(driver, driver.snapshot_delete(vm.backend_id, ref=ref), self.poll_timeout)
        assert ref not in [s.ref for s in driver.snapshot_list(vm.backend_id)]
        wait_done(driver, driver.snapshot_delete(vm.backend_id, ref=ref), self.poll_timeout)  # gone is fine
        with pytest.raises(PermanentDriverError):
            driver.snapshot_revert(vm.backend_id, ref=ref)

    def test_resize_grows_and_refuses_a_smaller_disk(self, driver, make_spec):
        if not driver.supports(Capability.RESIZE):
            self._refuses(lambda: driver.resize("any", spec=ResizeSpec(vcpus=2, memory_mib=256, disk_gib=2)))
            return
        spec = make_spec()
        vm, _ = self._create(driver, lambda: spec)
        bigger = ResizeSpec(vcpus=spec.vcpus + 1, memory_mib=spec.memory_mib * 2, disk_gib=spec.disk_gib + 1)
        wait_done(driver, driver.resize(vm.backend_id, spec=bigger), self.poll_timeout)
        wait_done(driver, driver.resize(vm.backend_id, spec=bigger), self.poll_timeout)  # already there
        assert driver.get(vm.backend_id).power_state == PowerState.RUNNING
        with pytest.raises(PermanentDriverError):
            driver.resize(vm.backend_id, spec=dataclasses.replace(bigger, disk_gib=spec.disk_gib))

    def test_rebuild_is_idempotent_by_key(self, driver, make_spec):
        spec = make_spec()
        if not driver.supports(Capability.REBUILD):
            self._refuses(lambda: driver.rebuild("any", spec=spec))
            return
        vm, _ = self._create(driver, lambda: spec)
        rebuild = dataclasses.replace(spec, idempotency_key=new_key())
        status = wait_done(driver, driver.rebuild(vm.backend_id, spec=rebuild), self.poll_timeout)
        wait_done(driver, driver.rebuild(vm.backend_id, spec=rebuild), self.poll_timeout)
        assert driver.get(vm.backend_id).backend_id == vm.backend_id
        assert status.done
