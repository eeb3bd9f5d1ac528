"""OpenStack end to end: API → approval → the project's tenant provisioned first → create →
stop → start → reboot → delete, through Redis and a real Celery worker, against real nova
(nova's functional-test stack as its own process, see tests/novastack/)."""

import uuid

import pytest

from compute.choices import Action, OperationState, PowerState, VMStatus
from compute.models import ImageReference, Operation, ProjectQuota, TenantBinding, VirtualMachine
from tests.fixtures.compute import wait_operation
from tests.fixtures.factories import HypervisorFactory, ImageFactory, PlanFactory
from tests.fixtures.openstack import QUIET_SDK, SSH_KEY
from workers.drivers.base import HypervisorConfig
from workers.drivers.openstack import OpenStackDriver
from workers.drivers.openstack.settings import OpenStackSettings

QUEUE = "os-e2e"
pytestmark = [pytest.mark.worker, *QUIET_SDK]


@pytest.fixture(scope="session")
def _os_session_worker(celery_worker_factory, nova_stack):
    return celery_worker_factory(queues=QUEUE, name="openstack", concurrency=2)


@pytest.fixture
def os_worker(_os_session_worker, transactional_db):
    """A worker unit serving the OpenStack hypervisor's queue (restarted if a test killed it)."""
    if _os_session_worker.proc.poll() is not None:
        _os_session_worker.start()
    return _os_session_worker


@pytest.fixture
def cloud(nova_stack):
    """An OpenStack hypervisor on the nova stack, registered as an operator would; m1.tiny plans."""
    hypervisor = HypervisorFactory(
        name=f"os-{uuid.uuid4().hex[:6]}", kind="openstack", queue=QUEUE, connection=nova_stack.settings()
    )
    image = ImageFactory()
    ImageReference.objects.create(image=image, hypervisor=hypervisor, ref=nova_stack.image_id)
    plan = PlanFactory(vcpus=1, memory_mib=512, disk_gib=1, requires_approval=True)
    yield hypervisor, plan, image
    driver = OpenStackDriver(HypervisorConfig(name="cleanup", kind="openstack", settings=hypervisor.connection))
    for vm in driver.list_all():
        driver.delete(vm.backend_id)
    driver.close()


def request_and_approve(api, staff_api, project, cloud, name="app-1"):
    hypervisor, plan, image = cloud
    response = api.post(
        "/api/v1/vm-requests/",
        {
            "project": project.slug,
            "plan": plan.pk,
            "image": image.pk,
            "hypervisor": hypervisor.pk,
            "name": name,
            "ssh_public_key": SSH_KEY,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    approved = staff_api.post(f"/api/v1/vm-requests/{response.json()['id']}/approve/").json()
    assert approved["status"] == "approved", approved
    return approved["vm"]


def test_a_projects_first_vm_gets_a_tenant_then_the_full_lifecycle(os_worker, api, staff_api, project, cloud):
    hypervisor, _, _ = cloud
    ProjectQuota.objects.create(project=project, max_vms=3, max_vcpus=6)

    # Given a user's VM approved on an OpenStack hypervisor the project never used
    vm_id = request_and_approve(api, staff_api, project, cloud)
    create = Operation.objects.get(vm_id=vm_id, action=Action.CREATE)

    # Then the create waits for the project's tenant, provisioned as an operation of its own, and builds
    done = wait_operation(create.pk, timeout=90)
    assert done.state == OperationState.SUCCEEDED, done.error_message
    [provision] = Operation.objects.filter(project=project, hypervisor=hypervisor, action=Action.PROVISION)
    assert provision.state == OperationState.SUCCEEDED and provision.params["for_operation"] == create.pk
    assert provision.finished_at <= done.finished_at
    assert done.attempts == 1  # the waits were not attempts
    binding = TenantBinding.objects.get(project=project, hypervisor=hypervisor)
    tenant_project = OpenStackSettings.from_config("x", hypervisor.connection, {}).noauth_project_id(project.slug)
    assert binding.ready and binding.data == {
        "project_id": tenant_project,
        "project_name": f"cp-{project.slug}",
        "quotas": {"instances": 3, "cores": 6, "ram": 65536},
        "network_id": hypervisor.connection["network_id"],
    }
    vm = VirtualMachine.objects.get(pk=vm_id)
    assert (vm.status, vm.power_state, vm.task_state) == (VMStatus.ACTIVE, PowerState.RUNNING, None)

    # and on nova: the server is in the tenant's project, whose quotas are ours
    driver = OpenStackDriver(HypervisorConfig(name="look", kind="openstack", settings=hypervisor.connection))
    server = driver.client.conn.compute.get_server(vm.backend_id)
    assert (server.project_id, server.status, server.name) == (tenant_project, "ACTIVE", "app-1")
    assert server.metadata["cp_idempotency_key"] == str(create.idempotency_key)
    quota = driver.client.conn.compute.get_quota_set(tenant_project)
    assert (quota.instances, quota.cores) == (3, 6)

    # stop → start → reboot → delete, each through the API, each ending on nova
    for action, status, power in [
        ("stop", VMStatus.STOPPED, PowerState.STOPPED),
        ("start", VMStatus.ACTIVE, PowerState.RUNNING),
        ("reboot", VMStatus.ACTIVE, PowerState.RUNNING),
        ("delete", VMStatus.DELETED, PowerState.STOPPED),
    ]:
        if action == "delete":
            response = api.delete(f"/api/v1/virtual-machines/{vm.pk}/")
        else:
            response = api.post(f"/api/v1/virtual-machines/{vm.pk}/{action}/")
        assert response.status_code == 202, response.json()
        finished = wait_operation(response.json()["operation"]["id"], timeout=60)
        assert finished.state == OperationState.SUCCEEDED, (action, finished.error_message)
        assert finished.task_ref == vm.backend_id
        vm.refresh_from_db()
        assert (vm.status, vm.power_state, vm.task_state) == (status, power, None), action
    assert driver.get(vm.backend_id) is None

    # A second VM of the project needs no provisioning
    second = Operation.objects.get(vm_id=request_and_approve(api, staff_api, project, cloud, "app-2"), action="create")
    assert wait_operation(second.pk, timeout=60).state == OperationState.SUCCEEDED
    assert Operation.objects.filter(project=project, action=Action.PROVISION).count() == 1
    driver.close()


def test_a_tenant_that_cannot_be_provisioned_fails_the_create_with_the_reason(
    os_worker, api, staff_api, project, cloud
):
    # Given a hypervisor set up for per-project networks on a cloud without a network service
    hypervisor, _, _ = cloud
    hypervisor.connection.pop("network_id")
    hypervisor.save()

    vm_id = request_and_approve(api, staff_api, project, cloud)

    # Then the provision fails (permanent: nothing to retry) and so does the waiting create
    create = wait_operation(Operation.objects.get(vm_id=vm_id, action=Action.CREATE).pk, timeout=60)
    provision = Operation.objects.get(project=project, action=Action.PROVISION)
    assert provision.state == OperationState.FAILED and provision.attempts == 1
    assert provision.error_message == (
        f"{hypervisor.name}: OpenStack has no network endpoint: auth_type none has no catalog; "
        "set network_endpoint_override, or network_id for a shared network."
    )
    assert create.state == OperationState.FAILED
    assert create.error_message == f"Setting up the project on {hypervisor.name} failed: {provision.error_message}"
    vm = VirtualMachine.objects.get(pk=vm_id)
    assert vm.status == VMStatus.ERROR and not vm.backend_id
    assert not TenantBinding.objects.filter(project=project, ready=True).exists()
