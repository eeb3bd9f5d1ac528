"""The OpenStack driver against real nova (real tier): nova's functional-test stack (API,
conductor, scheduler, two computes with the fake virt driver, placement) served over HTTP by
tests/novastack/serve_nova.py from its own virtualenv. No skips: if the stack cannot start,
these tests fail with the reason.

The stack has no identity or network API, so the hypervisor is configured as nova
``noauth2`` (``auth_type: none``: projects are implicit, a token is "user:project") with
the fixture's network shared by every project; what provisioning does there (pushing
quotas to nova, building servers inside the tenant's project) is tested here for real.
"""

import json
import uuid

import pytest

from compute.models import Hypervisor
from tests.fixtures.console import ws_connect
from tests.fixtures.openstack import QUIET_SDK, SSH_KEY, vm_spec
from tests.workers.contract import DriverContract, wait_done
from workers.drivers.base import HypervisorConfig, PermanentDriverError, PowerState, ResizeSpec, TenantSpec, VMSpec
from workers.drivers.openstack import OpenStackDriver
from workers.drivers.openstack.client import Code
from workers.drivers.openstack.servers import keypair_name

pytestmark = QUIET_SDK


def nova_driver(nova_stack, **settings) -> OpenStackDriver:
    return OpenStackDriver(
        HypervisorConfig(name="nova-test", kind="openstack", settings=nova_stack.settings(**settings))
    )


@pytest.fixture
def new_driver(nova_stack):
    """``new_driver(**settings)`` → a driver on the stack; every server built is deleted afterwards."""
    drivers = []

    def make(**settings) -> OpenStackDriver:
        drivers.append(nova_driver(nova_stack, **settings))
        return drivers[-1]

    yield make
    cleaner = nova_driver(nova_stack)
    tasks = [cleaner.delete(vm.backend_id) for vm in cleaner.list_all()]
    for task in tasks:
        wait_done(cleaner, task, 60)
    for made in [*drivers, cleaner]:
        made.close()


@pytest.fixture
def tenant(nova_stack, new_driver):
    """A freshly provisioned tenant (quotas unlimited unless a test sets its own)."""

    def make(key: str | None = None, **quotas) -> dict:
        spec = TenantSpec(
            project_key=key or uuid.uuid4().hex[:8], project_name="Acme", idempotency_key="k", quotas=quotas
        )
        return new_driver().provision_tenant(spec).data["tenant"]

    return make


@pytest.fixture
def nova_spec(nova_stack, tenant):
    """``nova_spec(**overrides)`` → a VMSpec for m1.tiny (1 vCPU, 512 MiB, 1 GiB) in a provisioned tenant."""
    default_tenant = tenant()

    def make(**overrides) -> VMSpec:
        tiny = {"memory_mib": 512, "disk_gib": 1, "extra": {"plan": "tiny", "project": "acme"}}
        return vm_spec(**(tiny | {"image_ref": nova_stack.image_id, "tenant": default_tenant} | overrides))

    return make


class TestNovaContract(DriverContract):
    poll_timeout = 60

    @pytest.fixture
    def driver(self, new_driver):
        return new_driver()

    @pytest.fixture
    def make_spec(self, nova_spec):
        return nova_spec

    @pytest.fixture
    def unknown_backend_id(self):
        return str(uuid.uuid4())

    def test_resize_grows_and_refuses_a_smaller_disk(self, driver, make_spec):
        """Nova resizes to flavors only: m1.tiny → m1.small (test_openstack_day2.py has the rest)."""
        vm, _ = self._create(driver, make_spec)
        small = ResizeSpec(vcpus=1, memory_mib=2048, disk_gib=20)
        wait_done(driver, driver.resize(vm.backend_id, spec=small), self.poll_timeout)
        wait_done(driver, driver.resize(vm.backend_id, spec=small), self.poll_timeout)  # already there
        assert driver.get(vm.backend_id).power_state == PowerState.RUNNING
        with pytest.raises(PermanentDriverError):
            driver.resize(vm.backend_id, spec=ResizeSpec(vcpus=1, memory_mib=512, disk_gib=1))


def test_provisioning_pushes_our_quotas_and_nova_enforces_them(new_driver, tenant, nova_spec):
    # Given a tenant provisioned with a quota of one instance
    os_driver = new_driver()
    data = tenant(instances=1, cores=4, ram_mib=4096)
    assert data["quotas"] == {"instances": 1, "cores": 4, "ram": 4096}
    quota = os_driver.client.conn.compute.get_quota_set(data["project_id"])
    assert (quota.instances, quota.cores, quota.ram) == (1, 4, 4096)

    # When it builds a first server, it lives in the tenant's project
    first = wait_done(os_driver, os_driver.create(nova_spec(tenant=data)), 60)
    assert first.vm.extra["project_id"] == data["project_id"]

    # Then nova refuses the second with its quota message, which users see
    with pytest.raises(PermanentDriverError) as raised:
        os_driver.create(nova_spec(name="web-2", tenant=data))
    assert raised.value.code == Code.QUOTA
    assert raised.value.message.startswith("OpenStack quota exceeded: Quota exceeded for instances: Requested 1, but")


def test_provisioning_twice_is_the_same_tenant(tenant):
    assert tenant("acme-twice", instances=3) == tenant("acme-twice", instances=3)


def test_a_server_carries_the_key_tags_metadata_and_the_key_pair(new_driver, nova_spec):
    os_driver = new_driver()
    spec = nova_spec(user_data="#cloud-config\n")
    status = wait_done(os_driver, os_driver.create(spec), 60)

    server = os_driver.client.conn.compute.get_server(status.vm.backend_id)
    assert server.metadata == {"cp_idempotency_key": spec.idempotency_key, "cp_project": "acme"}
    assert sorted(server.tags) == sorted(["controlplane", f"cp-{spec.idempotency_key}"])
    assert server.key_name == keypair_name(SSH_KEY)
    assert server.flavor["original_name"] == "m1.tiny"


def test_two_servers_with_one_ssh_key_share_one_key_pair(new_driver, nova_spec):
    os_driver = new_driver()
    for name in ("web-1", "web-2"):
        wait_done(os_driver, os_driver.create(nova_spec(name=name)), 60)
    names = [kp.name for kp in os_driver.client.conn.compute.keypairs()]
    assert names.count(keypair_name(SSH_KEY)) == 1


def test_a_missing_image_fails_at_once_with_novas_message(new_driver, nova_spec):
    with pytest.raises(PermanentDriverError) as raised:
        new_driver().create(nova_spec(image_ref=str(uuid.uuid4())))
    assert raised.value.code == Code.INVALID
    assert raised.value.message == "OpenStack rejected creating server web-1: Can not find requested image"


def test_a_plan_without_a_flavor_fails_with_a_clear_message(new_driver, nova_spec):
    with pytest.raises(PermanentDriverError) as raised:
        new_driver().create(nova_spec(vcpus=3, memory_mib=3000))
    assert (
        raised.value.code == Code.NO_FLAVOR
        and "3 vCPUs, 3000 MiB RAM and 1 GiB disk (plan tiny)" in raised.value.message
    )


def test_listing_sees_servers_of_every_project(new_driver, tenant, nova_spec):
    os_driver = new_driver()
    built = {
        wait_done(os_driver, os_driver.create(nova_spec(name=f"web-{n}", tenant=tenant())), 60).vm.backend_id
        for n in range(2)
    }
    listed = {vm.backend_id: vm for vm in os_driver.list_all()}
    assert built <= set(listed)
    assert {listed[backend_id].power_state for backend_id in built} == {PowerState.RUNNING}


def test_check_reports_the_stack(new_driver, nova_stack):
    facts = new_driver().check()
    assert facts["compute_endpoint"].rstrip("/") == nova_stack.endpoint
    assert facts["auth_type"] == "none" and "m1.tiny" in facts["flavors"]


# -- consoles: nova's own noVNC; the console proxy sends the browser there -----------------------
# The stack runs no novncproxy: nova answers with a URL at its default novncproxy_base_url
# (http://127.0.0.1:6080/vnc_auto.html?path=%3Ftoken%3D...) that nothing serves here.


@pytest.mark.django_db(transaction=True)
def test_the_console_proxy_sends_the_browser_to_novas_console(
    api, nova_stack, new_driver, nova_spec, make_active_vm, console_proxy
):
    driver = new_driver()
    task = driver.create(nova_spec())
    status = wait_done(driver, task, 60)
    backend_id = (status.vm.backend_id if status.vm else None) or task.backend_id
    hypervisor = Hypervisor.objects.create(
        name="os-console", kind="openstack", queue="os-console", connection=nova_stack.settings()
    )
    vm = make_active_vm(hypervisor=hypervisor, backend_id=backend_id, name="nova-guest")
    link = api.post(f"/api/v1/virtual-machines/{vm.pk}/console/", {}, format="json").json()
    ws = ws_connect(console_proxy.url, token=link["websocket_url"].split("token=", 1)[1])
    redirect = json.loads(ws.receive())["redirect"]
    assert redirect.startswith("http://127.0.0.1:6080/vnc_auto.html?path=%3Ftoken%3D")
    assert ws.receive() is None  # and nothing else: the proxy relays nothing for nova
