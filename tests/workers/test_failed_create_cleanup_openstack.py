"""Issue 17: an OpenStack create whose server ends in ERROR deletes that server.

Real nova (nova's functional-test stack, tests/novastack/, as its own process): the plan maps
to a flavor that requires a resource no compute host has, so nova's scheduler finds no valid
host and puts the server in ERROR (where it counts against the project's quota). The engine
runs in this process (``run_engine``) with the real OpenStack driver: the project's tenant is
provisioned first (the tenant gate), then the create fails, the server is deleted, the
operation says so, and a retry on a flavor that fits makes exactly one server."""

import uuid

import pytest

from compute import services
from compute.choices import Action, OperationState, VMStatus
from compute.models import ImageReference, Operation
from tests.fixtures.compute import request_create, run_engine
from tests.fixtures.factories import HypervisorFactory, ImageFactory, PlanFactory
from tests.fixtures.openstack import QUIET_SDK
from workers import engine
from workers.drivers.base import HypervisorConfig
from workers.drivers.openstack import OpenStackDriver

pytestmark = QUIET_SDK


@pytest.fixture
def nova(nova_stack):
    driver = OpenStackDriver(HypervisorConfig(name="nova-cleanup", kind="openstack", settings=nova_stack.settings()))
    yield driver
    for vm in driver.list_all():
        driver.delete(vm.backend_id)
    driver.close()


def test_a_create_whose_server_goes_to_error_deletes_it(nova_stack, nova, user, project):
    # Given a flavor no compute host can place (it asks for a resource class no host has; its disk
    # differs from the plan so that only the explicit mapping picks it)
    flavors = nova.client.conn.compute
    nowhere = flavors.create_flavor(name=f"cp-nowhere-{uuid.uuid4().hex[:6]}", ram=512, vcpus=1, disk=2)
    flavors.create_flavor_extra_specs(nowhere, {"resources:CUSTOM_CP_NOWHERE": "1"})
    plan = PlanFactory(vcpus=1, memory_mib=512, disk_gib=1)
    hypervisor = HypervisorFactory(
        name=f"os-{uuid.uuid4().hex[:6]}",
        kind="openstack",
        queue="nobody",
        connection=nova_stack.settings(flavors={plan.name: nowhere.name}),
    )
    image = ImageFactory()
    ImageReference.objects.create(image=image, hypervisor=hypervisor, ref=nova_stack.image_id)
    vm, op = request_create(user, project, plan, image, hypervisor, "web-error")

    # When the engine runs it: the tenant is provisioned first, then the create
    engine.execute_operation(op.pk, worker="test-engine")
    provision = Operation.objects.get(action=Action.PROVISION, hypervisor=hypervisor)
    assert run_engine(provision.pk).state == OperationState.SUCCEEDED
    done = run_engine(op.pk)

    # Then it failed with nova's fault, and the server in ERROR was deleted
    assert done.state == OperationState.FAILED, done.error_message
    assert "No valid host" in done.error_message, done.error_message
    assert "was removed from the hypervisor" in done.error_message
    removed = done.result["cleanup"]["removed"]
    assert nova.get(removed) is None
    assert [guest for guest in nova.list_all() if guest.idempotency_key == str(done.idempotency_key)] == []
    vm.refresh_from_db()
    assert (vm.status, vm.task_state) == (VMStatus.ERROR, None)

    # And a retry on a flavor that fits (the operator fixed the mapping) builds exactly one server
    hypervisor.connection = nova_stack.settings()
    hypervisor.save()
    services.operation_retry(operation=done, actor=user)
    retried = run_engine(op.pk)
    assert retried.state == OperationState.SUCCEEDED, retried.error_message
    assert len([g for g in nova.list_all() if g.idempotency_key == str(done.idempotency_key)]) == 1
