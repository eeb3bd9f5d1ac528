"""The OpenStack driver's requests and answers, on openstacksdk's ConnectionFixture behind
requests-mock (fast tier). The same driver against real nova: test_openstack_nova.py."""

import base64
import json

import pytest

from tests.fixtures.openstack import COMPUTE, IMAGE_ID, QUIET_SDK, SERVER, SSH_KEY, server_body, show
from tests.workers.contract import wait_done
from workers.drivers.base import DriverTask, PermanentDriverError, PowerState, TransientDriverError
from workers.drivers.openstack.client import Code
from workers.drivers.openstack.servers import keypair_name

pytestmark = QUIET_SDK


def actions(cloud) -> list[dict]:
    return cloud.bodies("POST", f"/servers/{SERVER}/action")


# -- create ---------------------------------------------------------------------------------


def test_create_sends_one_server_built_in_the_tenant_project(cloud, openstack_driver, openstack_spec):
    driver = openstack_driver()
    spec = openstack_spec(user_data="#cloud-config\npackages: [nginx]\n")

    task = driver.create(spec)

    # The handle is the server id
    assert (task.ref, task.backend_id, task.done) == (SERVER, SERVER, False)
    [body] = cloud.bodies("POST", "/servers")
    assert body == {
        "server": {
            "name": "web-1",
            "flavorRef": "2",  # m1.small: exactly 1 vCPU, 2048 MiB, 20 GiB
            "imageRef": IMAGE_ID,
            "networks": [{"uuid": "net-1"}],
            "metadata": {"cp_idempotency_key": spec.idempotency_key, "cp_project": "acme"},
            "tags": ["controlplane", f"cp-{spec.idempotency_key}"],
            "security_groups": [{"name": "sg-1"}],
            "key_name": keypair_name(SSH_KEY),
            "user_data": base64.b64encode(spec.user_data.encode()).decode(),
        }
    }
    # tags on create need microversion 2.52 or later
    [create] = cloud.calls("POST", f"{COMPUTE}/servers")
    assert float(create.headers["OpenStack-API-Version"].split()[1]) >= 2.52
    # the key pair did not exist: it was created from the SSH key, named after its fingerprint
    assert cloud.bodies("POST", "/os-keypairs") == [{"keypair": {"name": keypair_name(SSH_KEY), "public_key": SSH_KEY}}]
    # built in the tenant's project: the create went through a token scoped to it
    scopes = [json.loads(call.body)["auth"]["scope"] for call in cloud.calls("POST", "/auth/tokens")]
    assert {"project": {"id": "tenant-project"}} in scopes


def test_create_finds_the_server_of_an_earlier_attempt_by_its_key(cloud, openstack_driver, openstack_spec):
    spec = openstack_spec()
    cloud.mock.get(f"{COMPUTE}/servers/detail", json={"servers": [server_body(SERVER, key=spec.idempotency_key)]})

    task = openstack_driver().create(spec)

    assert task.backend_id == SERVER
    assert cloud.calls("POST", f"{COMPUTE}/servers") == []
    [lookup] = cloud.calls("GET", "/servers/detail")
    assert lookup.qs == {"all_tenants": ["True"], "tags": [f"cp-{spec.idempotency_key}"]}


def test_an_existing_key_pair_is_reused(cloud, openstack_driver, openstack_spec):
    cloud.mock.get(f"{COMPUTE}/os-keypairs/{keypair_name(SSH_KEY)}", json={"keypair": {"name": "x"}})
    openstack_driver().create(openstack_spec())
    assert cloud.calls("POST", "/os-keypairs") == []


def test_a_key_pair_created_meanwhile_is_fine(cloud, openstack_driver, openstack_spec):
    cloud.mock.post(f"{COMPUTE}/os-keypairs", status_code=409, json={"conflictingRequest": {"message": "exists"}})
    assert openstack_driver().create(openstack_spec()).backend_id == SERVER


def test_a_plan_mapped_to_a_flavor_name_uses_it(cloud, openstack_driver, openstack_spec):
    cloud.mock.get(f"{COMPUTE}/flavors/c1.special", json={"flavor": {"id": "77", "name": "c1.special"}})
    openstack_driver(flavors={"small": "c1.special"}).create(openstack_spec())
    assert cloud.bodies("POST", f"{COMPUTE}/servers")[0]["server"]["flavorRef"] == "77"


def test_no_matching_flavor_fails_with_what_is_missing(cloud, openstack_driver, openstack_spec):
    with pytest.raises(PermanentDriverError) as raised:
        openstack_driver().create(openstack_spec(vcpus=3, memory_mib=3072))
    assert raised.value.code == Code.NO_FLAVOR
    assert raised.value.message == (
        "No flavor on os-test has 3 vCPUs, 3072 MiB RAM and 20 GiB disk (plan small): an operator must add one "
        "or map the plan in settings.flavors."
    )
    assert cloud.calls("POST", f"{COMPUTE}/servers") == []


def test_create_without_a_provisioned_tenant_fails(cloud, openstack_driver, openstack_spec):
    with pytest.raises(PermanentDriverError, match="tenant provisioning has not run"):
        openstack_driver().create(openstack_spec(tenant={}))


def test_create_poll_build_then_active(cloud, openstack_driver, openstack_spec):
    driver = openstack_driver()
    task = driver.create(openstack_spec())
    show(
        cloud,
        server_body(SERVER, status="BUILD", task_state="spawning", progress=40),
        server_body(SERVER, status="ACTIVE"),
    )

    building = driver.poll(task)
    assert (building.done, building.progress, building.message) == (False, 40, "building (spawning)")
    done = driver.poll(task)
    assert done.done and done.vm.backend_id == SERVER
    assert (done.vm.power_state, done.vm.ip_addresses) == (PowerState.RUNNING, ("10.10.0.5",))


def test_create_poll_error_fails_with_novas_fault(cloud, openstack_driver, openstack_spec):
    driver = openstack_driver()
    task = driver.create(openstack_spec())
    fault = {"code": 500, "message": "No valid host was found. There are not enough hosts available."}
    show(cloud, server_body(SERVER, status="ERROR", fault=fault))

    with pytest.raises(PermanentDriverError) as raised:
        driver.poll(task)
    assert raised.value.message == (
        "OpenStack could not create the server: No valid host was found. There are not enough hosts available."
    )


# -- power actions ----------------------------------------------------------------------------


def test_stop_then_poll_until_shutoff(cloud, openstack_driver):
    cloud.mock.post(f"{COMPUTE}/servers/{SERVER}/action", status_code=202)
    show(
        cloud,
        server_body(SERVER, status="ACTIVE"),
        server_body(SERVER, status="ACTIVE", task_state="powering-off"),
        server_body(SERVER, status="SHUTOFF"),
    )
    driver = openstack_driver()

    task = driver.stop(SERVER)
    assert actions(cloud) == [{"os-stop": None}]
    assert driver.poll(task).message == "shutting down (powering-off)"
    status = driver.poll(task)
    assert status.done and status.vm.power_state == PowerState.STOPPED


def test_stop_of_a_stopped_server_is_done_at_once(cloud, openstack_driver):
    show(cloud, server_body(SERVER, status="SHUTOFF"))
    task = openstack_driver().stop(SERVER)
    assert task.done and actions(cloud) == []


def test_a_409_from_a_server_already_stopped_counts_as_stopped(cloud, openstack_driver):
    # The listing said ACTIVE, then nova answers 409: the server stopped meanwhile
    message = "Cannot 'stop' instance while it is in vm_state stopped"
    cloud.mock.post(
        f"{COMPUTE}/servers/{SERVER}/action", status_code=409, json={"conflictingRequest": {"message": message}}
    )
    show(cloud, server_body(SERVER, status="ACTIVE"), server_body(SERVER, status="SHUTOFF"))
    assert openstack_driver().stop(SERVER).done


def test_a_409_from_a_busy_server_is_transient(cloud, openstack_driver):
    message = "Cannot 'stop' instance while it is in task_state rebooting"
    cloud.mock.post(
        f"{COMPUTE}/servers/{SERVER}/action", status_code=409, json={"conflictingRequest": {"message": message}}
    )
    show(cloud, server_body(SERVER, status="REBOOT", task_state="rebooting"))
    with pytest.raises(TransientDriverError) as raised:
        openstack_driver().stop(SERVER)
    assert raised.value.code == Code.BUSY and "task_state rebooting" in raised.value.message


def test_a_409_from_a_server_in_error_is_permanent(cloud, openstack_driver):
    message = "Cannot 'start' instance while it is in vm_state error"
    cloud.mock.post(
        f"{COMPUTE}/servers/{SERVER}/action", status_code=409, json={"conflictingRequest": {"message": message}}
    )
    show(cloud, server_body(SERVER, status="ERROR", fault={"message": "Disk full"}))
    with pytest.raises(PermanentDriverError) as raised:
        openstack_driver().start(SERVER)
    assert raised.value.message == f"Cannot start server {SERVER}: it is in ERROR (Disk full)."


def test_start_of_a_running_server_is_done_at_once(cloud, openstack_driver):
    show(cloud, server_body(SERVER, status="ACTIVE"))
    assert openstack_driver().start(SERVER).done and actions(cloud) == []


def test_start_of_a_missing_server_fails(cloud, openstack_driver):
    show(cloud, {}, status_code=404)
    with pytest.raises(PermanentDriverError) as raised:
        openstack_driver().start(SERVER)
    assert raised.value.code == Code.NOT_FOUND


def test_a_soft_reboot_that_hangs_becomes_a_hard_one(cloud, openstack_driver):
    cloud.mock.post(f"{COMPUTE}/servers/{SERVER}/action", status_code=202)
    show(
        cloud,
        server_body(SERVER, status="ACTIVE"),
        server_body(SERVER, status="REBOOT", task_state="rebooting"),
        server_body(SERVER, status="HARD_REBOOT", task_state="rebooting_hard"),
        server_body(SERVER, status="ACTIVE"),
    )
    driver = openstack_driver(reboot_timeout_seconds=0)

    task = driver.reboot(SERVER)
    assert actions(cloud) == [{"reboot": {"type": "SOFT"}}]
    # The soft reboot is still running past the timeout: a hard reboot replaces it
    status = driver.poll(task)
    assert (status.done, status.message, status.task.data["type"]) == (False, "hard rebooting", "HARD")
    assert actions(cloud)[-1] == {"reboot": {"type": "HARD"}}
    assert driver.poll(status.task).message == "hard rebooting (rebooting_hard)"
    assert driver.poll(status.task).done


def test_reboot_of_a_stopped_server_fails(cloud, openstack_driver):
    show(cloud, server_body(SERVER, status="SHUTOFF"))
    with pytest.raises(PermanentDriverError, match="it is SHUTOFF"):
        openstack_driver().reboot(SERVER)


def test_delete_polls_until_gone_and_deleted_status_counts(cloud, openstack_driver):
    cloud.mock.delete(f"{COMPUTE}/servers/{SERVER}", status_code=204)
    show(cloud, server_body(SERVER, status="ACTIVE"), server_body(SERVER, status="ACTIVE", task_state="deleting"))
    driver = openstack_driver()

    task = driver.delete(SERVER)
    assert len(cloud.calls("DELETE", SERVER)) == 1
    assert not driver.poll(task).done
    # nova shows DELETED for a moment before the server answers 404: both mean gone
    show(cloud, server_body(SERVER, status="DELETED"))
    assert driver.poll(task).done
    show(cloud, {}, status_code=404)
    status = driver.poll(task)
    assert status.done and status.vm is None


def test_delete_of_a_missing_server_is_done(cloud, openstack_driver):
    show(cloud, {}, status_code=404)
    assert openstack_driver().delete(SERVER).done
    assert cloud.calls("DELETE") == []


def test_get_says_gone_only_when_nova_does(cloud, openstack_driver):
    driver = openstack_driver()
    show(cloud, {}, status_code=404)
    assert driver.get(SERVER) is None
    show(cloud, {}, status_code=503)
    with pytest.raises(TransientDriverError):
        driver.get(SERVER)


# -- listing ----------------------------------------------------------------------------------


def test_list_all_is_one_paginated_listing_of_our_servers_in_all_projects(cloud, openstack_driver):
    page_two = f"{COMPUTE}/servers/detail?all_tenants=True&tags=controlplane&marker=s2"
    cloud.mock.get(
        f"{COMPUTE}/servers/detail",
        [
            {
                "json": {
                    "servers": [server_body("s1", key="k1"), server_body("s2", status="SHUTOFF")],
                    "servers_links": [{"rel": "next", "href": page_two}],
                }
            },
            {"json": {"servers": [server_body("s3", status="DELETED"), server_body("s4", status="PAUSED")]}},
        ],
    )

    listed = openstack_driver().list_all()

    assert [(vm.backend_id, vm.power_state) for vm in listed] == [
        ("s1", PowerState.RUNNING),
        ("s2", PowerState.STOPPED),
        ("s4", PowerState.PAUSED),
    ]
    assert listed[0].idempotency_key == "k1"
    first, second = cloud.calls("GET", "/servers/detail")
    assert first.qs == {"all_tenants": ["True"], "tags": ["controlplane"]}
    assert second.qs["marker"] == ["s2"]


def test_check_reports_the_compute_api_and_flavors(cloud, openstack_driver):
    facts = openstack_driver().check()
    assert facts["microversions"] == "2.1..2.96"
    assert facts["flavors"] == ["m1.medium", "m1.small", "m1.tiny"]
    assert facts["auth_type"] == "password" and facts["project_id"] == cloud.fixture.project_id


def test_check_warns_about_a_missing_external_network(cloud, openstack_driver):
    assert "warning" not in openstack_driver().check()
    facts = openstack_driver(external_network="elsewhere").check()
    assert facts["warning"] == "external_network 'elsewhere' is not an external network of this cloud."


def test_contract_polling_helper_follows_a_provision_handle(cloud, openstack_driver):
    # what the engine stores for a provision: the tenant ids come back as the final handle's data
    task = DriverTask(ref="tenant:p1", done=True, data={"action": "provision", "tenant": {"project_id": "p1"}})
    status = wait_done(openstack_driver(), task)
    assert status.task.data == {"project_id": "p1"}
