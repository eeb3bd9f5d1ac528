"""A pool address end to end on the simulator: API create → real worker → the guest reports the
pool's address → API and VM page show it → delete → the address cools down."""

import pytest

from compute.choices import OperationState
from compute.models import IPAllocation, Operation, VirtualMachine
from tests.compute.test_ipam import _pool
from tests.fixtures.compute import wait_operation

pytestmark = pytest.mark.worker


def test_a_new_vm_is_built_with_its_pool_addresses_and_gives_them_back_on_delete(
    live_worker, api, project, plan, image, simulator
):
    # Given a dual-stack pool on the simulator
    _pool(simulator)
    response = api.post(
        "/api/v1/vm-requests/",
        {"project": project.slug, "plan": plan.pk, "image": image.pk, "hypervisor": simulator.pk, "name": "web-1"},
        format="json",
    )
    vm_id = response.json()["vm"]
    # The API shows the addresses from creation on, before the guest exists
    no_ptr = {"ptr": "", "ptr_pending": False, "extra": False}  # no PowerDNS configured: no reverse names
    assert api.get(f"/api/v1/virtual-machines/{vm_id}/").json()["addresses"] == [
        {"address": "192.0.2.2", "family": 4, **no_ptr},
        {"address": "2001:db8:10::2", "family": 6, **no_ptr},
    ]

    # When the worker builds it, the hypervisor reports back the static addresses it was given
    create = Operation.objects.get(vm_id=vm_id, action="create")
    assert wait_operation(create.pk).state == OperationState.SUCCEEDED
    vm = VirtualMachine.objects.get(pk=vm_id)
    assert vm.ip_addresses == ["192.0.2.2", "2001:db8:10::2"]
    page = api.get(f"/projects/{project.slug}/vms/{vm_id}/").content.decode()
    assert "<code>192.0.2.2</code>" in page and "<code>2001:db8:10::2</code>" in page

    # Deleted: the addresses cool down (not free, not assigned)
    response = api.delete(f"/api/v1/virtual-machines/{vm_id}/")
    assert wait_operation(response.json()["operation"]["id"]).state == OperationState.SUCCEEDED
    assert set(IPAllocation.objects.values_list("state", flat=True)) == {"cooling"}
    assert api.get(f"/api/v1/virtual-machines/{vm_id}/").json()["addresses"] == []
