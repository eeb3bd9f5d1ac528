import pytest

from tests.workers.contract import DriverContract, new_key, wait_done
from workers.drivers.base import HypervisorConfig, PermanentDriverError, TransientDriverError, VMSpec, get_driver


def _driver(tmp_path, **settings):
    config = HypervisorConfig(
        name="sim-contract", kind="simulator", settings={"state_path": str(tmp_path / "sim.sqlite3"), **settings}
    )
    return get_driver(config)


@pytest.fixture
def driver(tmp_path):
    return _driver(tmp_path, latency=0.05)


@pytest.fixture
def make_spec():
    def make(**overrides):
        values = {
            "name": "vm1",
            "idempotency_key": new_key(),
            "vcpus": 1,
            "memory_mib": 512,
            "disk_gib": 10,
            "image_ref": "tmpl-debian",
        }
        values.update(overrides)
        return VMSpec(**values)

    return make


@pytest.fixture
def unknown_backend_id():
    return "sim-doesnotexist"


class TestSimulatorContract(DriverContract):
    poll_timeout = 10


def test_state_is_shared_between_driver_instances(tmp_path, make_spec):
    # Given two processes' worth of drivers on the same state file
    first = _driver(tmp_path, latency=0.01)
    task = first.create(make_spec())
    wait_done(first, task)
    from workers.drivers.simulator import SimulatorStore

    # Then another store sees the guest
    assert [row["backend_id"] for row in SimulatorStore(tmp_path / "sim.sqlite3").guests()] == [task.backend_id]


def test_progress_advances_with_time(tmp_path, make_spec):
    driver = _driver(tmp_path, latency=0.5)
    task = driver.create(make_spec())
    first = driver.poll(task)
    assert not first.done and first.progress < 50 and first.poll_after > 0
    status = wait_done(driver, task)
    assert status.done and status.progress == 100


def test_first_n_failures_are_deterministic(tmp_path, make_spec):
    driver = _driver(
        tmp_path, latency=0.01, transient_failures_first={"create": 2}, permanent_failures_first={"stop": 1}
    )
    spec = make_spec()
    for _ in range(2):
        with pytest.raises(TransientDriverError):
            driver.create(spec)
    wait_done(driver, driver.create(spec))
    backend_id = driver.find_by_key(spec.idempotency_key).backend_id
    with pytest.raises(PermanentDriverError, match="permanent failure during stop"):
        driver.stop(backend_id)
    wait_done(driver, driver.stop(backend_id))


def test_create_log_counts_real_creations_only(tmp_path, make_spec):
    driver = _driver(tmp_path, latency=0.01)
    spec = make_spec()
    wait_done(driver, driver.create(spec))
    wait_done(driver, driver.create(spec))
    assert driver.store.create_counts() == {spec.idempotency_key: 1}


def test_reboot_of_a_stopped_guest_is_refused(tmp_path, make_spec):
    driver = _driver(tmp_path, latency=0.01)
    task = driver.create(make_spec())
    wait_done(driver, task)
    wait_done(driver, driver.stop(task.backend_id))
    with pytest.raises(PermanentDriverError, match="not running"):
        driver.reboot(task.backend_id)
