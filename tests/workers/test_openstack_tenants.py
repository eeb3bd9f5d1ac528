"""Tenant provisioning requests, idempotency and errors, on openstacksdk's ConnectionFixture behind
requests-mock with a small in-memory Keystone/Neutron registry (fast tier). nova's functional
stack has no identity or network API; what it has (quota sets, project-scoped builds) is tested
on it in test_openstack_nova.py."""

import pytest

from tests.fixtures.openstack import IDENTITY, QUIET_SDK
from workers.drivers.base import PermanentDriverError, TenantSpec
from workers.drivers.openstack.client import Code

pytestmark = QUIET_SDK
QUOTAS = {"instances": 4, "cores": 8, "ram_mib": 16384, "disk_gib": 200}


def provision(driver, key="acme"):
    task = driver.provision_tenant(
        TenantSpec(project_key=key, project_name="Acme Ltd", idempotency_key="k", quotas=QUOTAS)
    )
    status = driver.poll(task)
    assert task.done and status.done
    return status.task.data


def writes(cloud) -> list[tuple[str, str]]:
    return [
        (call.method, call.path) for call in cloud.calls() if call.method != "GET" and "/auth/tokens" not in call.url
    ]


def test_a_project_gets_its_project_role_quotas_network_router_and_rules(fake_cloud, openstack_driver):
    data = provision(openstack_driver(subnet_cidr="10.77.0.0/24", dns_nameservers=["1.1.1.1"]))

    # Then the ids are what create needs
    store = fake_cloud.store
    assert data == {
        "project_id": "project-1",
        "project_name": "cp-acme",
        "quotas": {"instances": 4, "cores": 8, "ram": 16384},
        "network_id": "network-2",
        "subnet_id": "subnet-1",
        "router_id": "router-1",
        "external_network_id": "ext-net",
        "security_group_id": "security_group-1",
    }
    # an OpenStack project in the configured domain
    assert store["projects"]["project-1"] == {
        "id": "project-1",
        "name": "cp-acme",
        "domain_id": "default",
        "description": "Control plane project Acme Ltd (acme)",
        "enabled": True,
    }
    # our user is a member, so it can build servers in it
    assert fake_cloud.role_assignments == {("project-1", fake_cloud.user_id, "role-member")}
    # our quotas, pushed to nova's quota set of the project
    assert fake_cloud.quota_sets == {"project-1": {"instances": 4, "cores": 8, "ram": 16384}}
    # a private network and subnet owned by the project
    assert store["networks"]["network-2"] == {"id": "network-2", "name": "cp-acme-net", "project_id": "project-1"}
    subnet = store["subnets"]["subnet-1"]
    assert (subnet["cidr"], subnet["network_id"], subnet["project_id"]) == ("10.77.0.0/24", "network-2", "project-1")
    assert (subnet["ip_version"], subnet["enable_dhcp"], subnet["dns_nameservers"]) == (4, True, ["1.1.1.1"])
    # a router with its gateway on the external network and an interface on the subnet
    router = store["routers"]["router-1"]
    assert router["external_gateway_info"] == {"network_id": "ext-net"} and router["project_id"] == "project-1"
    assert [(p["device_id"], p["network_id"]) for p in store["ports"].values()] == [("router-1", "network-2")]
    # a security group letting SSH and ICMP in
    rules = sorted(
        (r["direction"], r["ethertype"], r["protocol"], r.get("port_range_min"), r["remote_ip_prefix"])
        for r in store["security_group_rules"].values()
    )
    assert rules == [("ingress", "IPv4", "icmp", None, "0.0.0.0/0"), ("ingress", "IPv4", "tcp", 22, "0.0.0.0/0")]


def test_provisioning_again_finds_everything_and_creates_nothing(fake_cloud, openstack_driver):
    # Given a first run, and a second one after a crash (or an operator retry)
    driver = openstack_driver()
    first = provision(driver)
    fake_cloud.mock.reset_mock()

    second = provision(driver)

    # Then the same ids come back and only the idempotent writes are repeated
    assert second == first
    assert writes(fake_cloud) == [
        ("PUT", f"/v3/projects/project-1/users/{fake_cloud.user_id}/roles/role-member"),
        ("PUT", "/v2.1/os-quota-sets/project-1"),
    ]


def test_a_run_that_died_half_way_is_completed(fake_cloud, openstack_driver):
    # Given a run that created the project and network, then died
    driver = openstack_driver()
    provision(driver)
    store = fake_cloud.store
    for collection in ("subnets", "routers", "ports", "security_groups", "security_group_rules"):
        store[collection].clear()
    fake_cloud.mock.reset_mock()

    data = provision(driver)

    # Then what exists is kept, what is missing is created
    assert (data["project_id"], data["network_id"]) == ("project-1", "network-2")
    created = [path for method, path in writes(fake_cloud) if method == "POST"]
    assert created == [
        "/v2.0/subnets",
        "/v2.0/routers",
        "/v2.0/security-groups",
        "/v2.0/security-group-rules",
        "/v2.0/security-group-rules",
    ]


def test_a_rule_added_meanwhile_is_fine(fake_cloud, openstack_driver):
    fake_cloud.mock.post(
        "https://network.example.com/v2.0/security-group-rules",
        status_code=409,
        json={"NeutronError": {"type": "SecurityGroupRuleExists", "message": "Security group rule already exists."}},
    )
    assert provision(openstack_driver())["security_group_id"] == "security_group-1"


def test_neutron_quota_exceeded_is_permanent_with_its_message(fake_cloud, openstack_driver):
    message = "Quota exceeded for resources: ['network']."
    fake_cloud.mock.post(
        "https://network.example.com/v2.0/networks",
        status_code=409,
        json={"NeutronError": {"type": "OverQuota", "message": message}},
    )
    with pytest.raises(PermanentDriverError) as raised:
        provision(openstack_driver())
    assert raised.value.code == Code.QUOTA
    assert raised.value.message == f"OpenStack quota exceeded: {message}"


def test_a_missing_role_says_which(fake_cloud, openstack_driver):
    with pytest.raises(PermanentDriverError) as raised:
        provision(openstack_driver(member_role="_member_"))
    assert raised.value.message == "OpenStack has no role '_member_' (settings.member_role)."


def test_a_missing_external_network_says_which(fake_cloud, openstack_driver):
    with pytest.raises(PermanentDriverError, match=r"no external network 'internet' \(settings.external_network\)"):
        provision(openstack_driver(external_network="internet"))


def test_without_admin_the_project_cannot_be_created(fake_cloud, openstack_driver):
    fake_cloud.mock.post(
        "https://identity.example.com/v3/projects",
        status_code=403,
        json={"error": {"code": 403, "message": "You are not authorized to perform the requested action."}},
    )
    with pytest.raises(PermanentDriverError) as raised:
        provision(openstack_driver())
    assert raised.value.code == Code.FORBIDDEN
    assert "creating project cp-acme" in raised.value.message


def test_no_external_network_means_no_router(fake_cloud, openstack_driver):
    data = provision(openstack_driver(external_network=""))
    assert "router_id" not in data and data["subnet_id"]
    assert not fake_cloud.store["routers"]


def test_a_shared_network_creates_no_network_only_the_projects_security_group(fake_cloud, openstack_driver):
    # Given a shared provider network
    driver = openstack_driver(network_id="provider-net")

    # When a project is provisioned twice, then it gets its security group with the configured rules, once
    data = provision(driver)
    assert provision(driver) == data
    assert data["network_id"] == "provider-net" and "subnet_id" not in data and "external_network_id" not in data
    assert data["security_group_id"] == "security_group-1"
    created = [path for method, path in writes(fake_cloud) if path.startswith("/v2.0/")]
    assert set(created) == {"/v2.0/security-groups", "/v2.0/security-group-rules"}
    rules = fake_cloud.store["security_group_rules"].values()
    assert {(r["protocol"], r.get("port_range_min")) for r in rules} == {("tcp", 22), ("icmp", None)}


def test_a_shared_project_creates_no_project_and_pushes_no_quotas(fake_cloud, openstack_driver):
    # Given application credentials, bound to their project
    driver = openstack_driver(
        credentials={"application_credential_id": "ac", "application_credential_secret": "s"},
        tenant_projects="shared",
    )
    data = provision(driver)
    assert data["project_id"] == fake_cloud.fixture.project_id and data["quotas"] == {}
    assert not fake_cloud.store["projects"] and not fake_cloud.quota_sets
    # each project still gets its own network, router and security group in the shared project
    assert fake_cloud.store["networks"]["network-2"]["project_id"] == fake_cloud.fixture.project_id


def test_keystone_refusing_the_credentials_during_provisioning_is_a_permanent_auth_error(fake_cloud, openstack_driver):
    # Given Keystone refusing our password (rotated, account disabled)
    fake_cloud.mock.post(
        f"{IDENTITY}/v3/auth/tokens", status_code=401, json={"error": {"code": 401, "message": "bad password"}}
    )

    # When a project is provisioned, then it fails at once with the reason, as check() says it
    with pytest.raises(PermanentDriverError) as raised:
        provision(openstack_driver())
    assert raised.value.code == Code.AUTH and "refused the credentials" in raised.value.message
