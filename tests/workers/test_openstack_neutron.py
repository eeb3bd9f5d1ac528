"""The OpenStack driver's identity and network calls against a real Keystone and a real
neutron-server (tests/fixtures/neutronstack.py): tenant provisioning (project, role,
network, subnet, router with its gateway on the external network, security group and
rules), idempotent on a second run; a floating IP allocated, associated with the server's
port, reused and released; the shared provider-network mode's security group.

Servers themselves are not built here (nova's stack, which has no Neutron, covers them):
the server's port is made through Neutron's API with the server's id as its device."""

import pytest

from workers.drivers.base import HypervisorConfig, TenantSpec
from workers.drivers.openstack import OpenStackDriver, floating

SERVER = "0b7f3c1e-1111-4222-8333-944455556666"


@pytest.fixture
def real_driver(neutron_stack):
    drivers = []

    def make(**settings):
        config = HypervisorConfig(
            name="os-neutron",
            kind="openstack",
            settings=neutron_stack.driver_settings(**settings),
            credentials=neutron_stack.credentials(),
        )
        drivers.append(OpenStackDriver(config))
        return drivers[-1]

    yield make
    for driver in drivers:
        driver.close()


def _tenant(key: str) -> TenantSpec:
    return TenantSpec(project_key=key, project_name=f"Project {key}", idempotency_key=f"tenant-{key}")


def test_provisioning_on_real_keystone_and_neutron_is_complete_and_idempotent(neutron_stack, real_driver):
    driver = real_driver()
    first = driver.provision_tenant(_tenant("acme")).data["tenant"]
    conn = neutron_stack.connect()

    project = conn.identity.get_project(first["project_id"])
    assert project.name == "cp-acme"
    network = conn.network.get_network(first["network_id"])
    assert network.name == "cp-acme-net" and network.project_id == project.id
    [subnet] = conn.network.subnets(network_id=network.id)
    assert subnet.cidr == "10.10.0.0/24"
    router = conn.network.get_router(first["router_id"])
    assert router.external_gateway_info["network_id"] == neutron_stack.external_network_id
    assert first["external_network_id"] == neutron_stack.external_network_id
    group = conn.network.get_security_group(first["security_group_id"])
    rules = {
        (r.direction, r.protocol, r.port_range_min)
        for r in conn.network.security_group_rules(security_group_id=group.id)
    }
    assert {("ingress", "tcp", 22), ("ingress", "icmp", None)} <= rules

    # A second run (a retried provision) finds everything and creates nothing
    counts = (
        len(list(conn.network.networks())),
        len(list(conn.network.routers())),
        len(list(conn.network.security_group_rules())),
    )
    again = driver.provision_tenant(_tenant("acme")).data["tenant"]
    assert again == first
    assert counts == (
        len(list(conn.network.networks())),
        len(list(conn.network.routers())),
        len(list(conn.network.security_group_rules())),
    )
    conn.close()


def test_a_floating_ip_on_real_neutron_is_associated_reused_and_released(neutron_stack, real_driver):
    driver = real_driver()
    tenant = driver.provision_tenant(_tenant("floaty")).data["tenant"]
    conn = neutron_stack.connect()
    port = conn.network.create_port(
        network_id=tenant["network_id"], project_id=tenant["project_id"], device_id=SERVER, device_owner="compute:nova"
    )

    address = floating.ensure(
        conn, server_id=SERVER, external_network_id=tenant["external_network_id"], project_id=tenant["project_id"]
    )
    [ip] = conn.network.ips(description=floating.description(SERVER))
    assert ip.floating_ip_address == address and address.startswith("203.0.113.")
    assert ip.port_id == port.id and ip.fixed_ip_address == port.fixed_ips[0]["ip_address"]
    assert ip.project_id == tenant["project_id"]

    # Polled again (after a crash): the same address, no second allocation
    assert (
        floating.ensure(
            conn, server_id=SERVER, external_network_id=tenant["external_network_id"], project_id=tenant["project_id"]
        )
        == address
    )
    assert len(list(conn.network.ips(description=floating.description(SERVER)))) == 1

    assert floating.release(conn, server_id=SERVER) == 1
    assert list(conn.network.ips(description=floating.description(SERVER))) == []
    conn.close()


def test_shared_provider_network_mode_gets_the_projects_security_group(neutron_stack, real_driver):
    conn = neutron_stack.connect()
    shared = conn.network.create_network(name="provider-shared", is_shared=True)
    driver = real_driver(network_id=shared.id, external_network=None)
    tenant = driver.provision_tenant(_tenant("sharedco")).data["tenant"]
    assert tenant["network_id"] == shared.id and "router_id" not in tenant
    group = conn.network.get_security_group(tenant["security_group_id"])
    assert group.name == "cp-sharedco-default" and group.project_id == tenant["project_id"]
    ports = {
        r.port_range_min for r in conn.network.security_group_rules(security_group_id=group.id) if r.protocol == "tcp"
    }
    assert ports == {22}
    conn.close()
