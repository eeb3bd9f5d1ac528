"""Per-project networks: a server gets a floating IP once active, its public address, released on
delete. Fast tier only (openstacksdk's ConnectionFixture + requests-mock with an in-memory Neutron
registry). The Neutron calls themselves also run against a real neutron-server in
test_openstack_neutron.py; the create poll that drives them is tested here (docs/OPENSTACK.md)."""

from tests.fixtures.openstack import COMPUTE, QUIET_SDK, SERVER, server_body, show

pytestmark = QUIET_SDK
TENANT = {
    "project_id": "tenant-project",
    "network_id": "net-1",
    "security_group_id": "sg-1",
    "external_network_id": "ext-net",
}


def test_an_active_server_gets_a_floating_ip_once_and_it_is_its_public_address(cloud, openstack_driver, openstack_spec):
    # Given a server on its project's network, whose port Neutron has not wired yet
    driver = openstack_driver()
    task = driver.create(openstack_spec(tenant=TENANT))
    show(cloud, server_body(SERVER, status="ACTIVE"))

    # When it is active but has no port: wait
    status = driver.poll(task)
    assert not status.done and status.message == "waiting for the server's port"

    # When the port exists: one floating IP on the external network, associated with that port
    cloud.store["ports"]["port-srv"] = {"id": "port-srv", "device_id": SERVER, "network_id": "net-1"}
    status = driver.poll(task)
    assert status.done and status.vm.ip_addresses == ("203.0.113.10", "10.10.0.5")
    [created] = cloud.bodies("POST", "/v2.0/floatingips")
    assert created == {
        "floatingip": {
            "floating_network_id": "ext-net",
            "port_id": "port-srv",
            "description": f"cp-server:{SERVER}",
            "project_id": "tenant-project",
        }
    }

    # A poll repeated after a crash reuses it
    assert driver.poll(task).vm.ip_addresses[0] == "203.0.113.10"
    assert len(cloud.bodies("POST", "/v2.0/floatingips")) == 1

    # When the server is deleted, the floating IP is given back
    cloud.mock.delete(f"{COMPUTE}/servers/{SERVER}", status_code=204)
    driver.delete(SERVER)
    assert cloud.store["floatingips"] == {}
    assert len(cloud.calls("DELETE", "/v2.0/floatingips/floatingip-1")) == 1


def test_a_shared_network_server_gets_no_floating_ip(cloud, openstack_driver, openstack_spec):
    driver = openstack_driver(network_id="provider-net")
    task = driver.create(openstack_spec())  # its tenant data has no external network
    show(cloud, server_body(SERVER, status="ACTIVE"))
    assert driver.poll(task).done
    assert cloud.calls("POST", "/v2.0/floatingips") == []
