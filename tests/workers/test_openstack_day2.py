"""OpenStack resize and rebuild against real nova (nova's functional stack: API, conductor,
scheduler, two computes with the fake virt driver, placement; tests/novastack). Flavors there:
m1.tiny 1/512/1, m1.small 1/2048/20, m1.medium 2/4096/40 (vCPU / MiB / GiB)."""

import time
import uuid

import pytest

from tests.fixtures.openstack import QUIET_SDK
from tests.workers.contract import wait_done
from tests.workers.test_openstack_nova import new_driver, nova_spec, tenant  # noqa: F401  (fixtures)
from workers.drivers.base import PermanentDriverError, PowerState, ResizeSpec
from workers.drivers.openstack.day2 import REBUILD_METADATA, flavor_sizes

pytestmark = QUIET_SDK

SMALL = ResizeSpec(vcpus=1, memory_mib=2048, disk_gib=20)
MEDIUM = ResizeSpec(vcpus=2, memory_mib=4096, disk_gib=40)


def _server(driver, backend_id):
    return driver.client.conn.compute.get_server(backend_id)


def _actions(driver, backend_id) -> list[str]:
    return sorted(a.action for a in driver.client.conn.compute.server_actions(backend_id))


def test_resize_running_server_is_confirmed_on_the_new_flavor(new_driver, nova_spec):  # noqa: F811
    driver = new_driver()
    backend_id = wait_done(driver, driver.create(nova_spec()), 60).vm.backend_id
    host_before = _server(driver, backend_id).compute_host

    status = wait_done(driver, driver.resize(backend_id, spec=SMALL), 90)

    server = _server(driver, backend_id)
    assert status.vm.power_state == PowerState.RUNNING and server.status == "ACTIVE"
    assert flavor_sizes(server) == (1, 2048, 20) and server.flavor["original_name"] == "m1.small"
    assert "resize" in _actions(driver, backend_id) and "confirmResize" in _actions(driver, backend_id)
    assert server.compute_host != host_before  # nova cold-migrated it (the guest restarted)

    # The same resize again (a retry) finds the flavor: done, nothing asked of nova
    assert driver.resize(backend_id, spec=SMALL).done
    assert _actions(driver, backend_id).count("resize") == 1

    # A smaller disk is refused before nova is asked
    with pytest.raises(PermanentDriverError) as refused:
        driver.resize(backend_id, spec=ResizeSpec(vcpus=1, memory_mib=512, disk_gib=1))
    assert refused.value.code == "disk_shrink"


def test_resize_resubmitted_in_verify_resize_is_confirmed_once(new_driver, nova_spec):  # noqa: F811
    driver = new_driver()
    backend_id = wait_done(driver, driver.create(nova_spec()), 60).vm.backend_id
    wait_done(driver, driver.stop(backend_id), 60)

    # The worker asked nova to resize, then died before confirming
    medium = driver._flavor_id(nova_spec(vcpus=2, memory_mib=4096, disk_gib=40))
    driver.client.conn.compute.resize_server(backend_id, medium)
    for _ in range(600):
        if _server(driver, backend_id).status == "VERIFY_RESIZE":
            break
        time.sleep(0.1)
    status = wait_done(driver, driver.resize(backend_id, spec=MEDIUM), 90)
    server = _server(driver, backend_id)
    assert status.vm.power_state == PowerState.STOPPED and server.status == "SHUTOFF"  # a stopped server stays so
    assert flavor_sizes(server) == (2, 4096, 40)
    assert _actions(driver, backend_id).count("resize") == 1


def test_rebuild_keeps_id_addresses_and_flavor_and_is_found_by_key(new_driver, nova_spec, nova_stack):  # noqa: F811
    driver = new_driver()
    spec = nova_spec()
    created = wait_done(driver, driver.create(spec), 60).vm
    other_image = next(image for image in nova_stack.info["images"] if image != spec.image_ref)
    key = str(uuid.uuid4())
    rebuild = nova_spec(idempotency_key=key, image_ref=other_image, tenant=spec.tenant)

    status = wait_done(driver, driver.rebuild(created.backend_id, spec=rebuild), 90)

    server = _server(driver, created.backend_id)
    assert status.vm.backend_id == created.backend_id and status.vm.power_state == PowerState.RUNNING
    assert server.image["id"] == other_image and server.status == "ACTIVE"
    assert status.vm.ip_addresses == created.ip_addresses and flavor_sizes(server) == (1, 512, 1)
    assert server.metadata[REBUILD_METADATA] == key
    assert server.metadata["cp_idempotency_key"] == spec.idempotency_key  # the create's key is kept
    assert driver.find_by_key(spec.idempotency_key).backend_id == created.backend_id

    # Submitted again with the same key (a crash after nova accepted it): followed, not repeated
    wait_done(driver, driver.rebuild(created.backend_id, spec=rebuild), 60)
    assert _actions(driver, created.backend_id).count("rebuild") == 1


def test_image_snapshot_reports_its_size_and_revert_rebuilds_from_it(new_driver, nova_spec):  # noqa: F811
    driver = new_driver()
    backend_id = wait_done(driver, driver.create(nova_spec()), 60).vm.backend_id

    status = wait_done(driver, driver.snapshot_create(backend_id, ref="cp-7"), 90)
    image = driver.client.conn.compute.get_image(driver._snapshot_image(backend_id, "cp-7").id)
    assert image.name == f"cp-snap-{backend_id}-cp-7" and image.status == "ACTIVE"
    assert status.result == {"size_bytes": image.size} and image.size > 0, image.size
    assert [s.ref for s in driver.snapshot_list(backend_id)] == ["cp-7"]

    # Revert of a stopped server: rebuilt from the snapshot image, still stopped
    wait_done(driver, driver.stop(backend_id), 60)
    wait_done(driver, driver.snapshot_revert(backend_id, ref="cp-7"), 90)
    server = _server(driver, backend_id)
    assert server.image["id"] == image.id and server.status == "SHUTOFF"
    assert "cp_idempotency_key" in server.metadata  # our markers survive the rebuild

    wait_done(driver, driver.snapshot_delete(backend_id, ref="cp-7"), 60)
    assert driver.snapshot_list(backend_id) == []
