"""Reverse DNS end to end: API create on the simulator → a real worker (queues sim-rdns and
housekeeping, PowerDNS settings in its environment) writes the default PTR → the user changes it
in the portal and the API → the real PowerDNS answers each → delete removes them."""

import pytest

from compute.choices import OperationState
from compute.models import Operation, ReverseDNSRecord
from tests.compute.test_ipam import _pool
from tests.fixtures.compute import wait_for, wait_operation
from tests.fixtures.powerdns import powerdns_settings

pytestmark = pytest.mark.worker


@pytest.fixture
def rdns_worker(celery_worker_factory, rdns_on):
    env = {k: ",".join(v) if isinstance(v, list) else str(v) for k, v in powerdns_settings(rdns_on).items()}
    worker = celery_worker_factory(queues="sim-rdns,housekeeping", name="rdns", extra_env=env)
    yield worker
    worker.stop()


def _answers(server, address, expected, timeout=20):
    return wait_for(lambda: server.ptr(address) == expected or None, timeout, message=f"PTR {address} = {expected}")


def test_ptr_records_follow_the_vm_from_create_to_delete(
    transactional_db, rdns_worker, rdns_on, api, project, plan, image, simulator
):
    simulator.queue = "sim-rdns"
    simulator.save(update_fields=["queue"])
    _pool(simulator)
    vm_id = api.post(
        "/api/v1/vm-requests/",
        {"project": project.slug, "plan": plan.pk, "image": image.pk, "hypervisor": simulator.pk, "name": "mx-1"},
        format="json",
    ).json()["vm"]

    # The default PTR reaches PowerDNS through the worker (on-commit publish, no relay needed)
    _answers(rdns_on, "192.0.2.2", ["ip-192-0-2-2.cloud.test."])
    _answers(rdns_on, "2001:db8:10::2", ["ip-2001-db8-10--2.cloud.test."])
    create = Operation.objects.get(vm_id=vm_id, action="create")
    assert wait_operation(create.pk).state == OperationState.SUCCEEDED
    addresses = api.get(f"/api/v1/virtual-machines/{vm_id}/").json()["addresses"]
    assert addresses[0] == {
        "address": "192.0.2.2",
        "family": 4,
        "ptr": "ip-192-0-2-2.cloud.test.",
        "ptr_pending": False,
        "extra": False,
    }

    # Portal: a name that does not resolve is refused with the reason; one that does is written
    page = f"/projects/{project.slug}/vms/{vm_id}/"
    response = api.post(
        page + "ptr/",
        {"address": "192.0.2.2", "ptr": "mx.customer.test"},
        format="multipart",
        follow=True,
        HTTP_REFERER=page,
    )
    assert "must resolve to 192.0.2.2" in response.content.decode()
    rdns_on.add_forward("mx.customer.test.", "192.0.2.2")
    response = api.post(
        page + "ptr/", {"address": "192.0.2.2", "ptr": "mx.customer.test"}, format="multipart", follow=True
    )
    assert "Reverse DNS of 192.0.2.2 set to mx.customer.test." in response.content.decode()
    _answers(rdns_on, "192.0.2.2", ["mx.customer.test."])
    assert "mx.customer.test." in api.get(page).content.decode()

    # API: the same rules, 400 naming the field
    response = api.post(f"/api/v1/virtual-machines/{vm_id}/ptr/", {"address": "2001:db8:10::2", "ptr": "bad_name.test"})
    assert response.status_code == 400 and "ptr" in response.json()["error"]["fields"]
    rdns_on.add_forward("mx6.customer.test.", "2001:db8:10::2")
    response = api.post(
        f"/api/v1/virtual-machines/{vm_id}/ptr/", {"address": "2001:db8:10::2", "ptr": "mx6.customer.test"}
    )
    assert response.status_code == 200 and response.json()["ptr"] == "mx6.customer.test."
    _answers(rdns_on, "2001:db8:10::2", ["mx6.customer.test."])

    # Delete: once the guest is confirmed gone, both PTR records are removed
    response = api.delete(f"/api/v1/virtual-machines/{vm_id}/")
    assert wait_operation(response.json()["operation"]["id"]).state == OperationState.SUCCEEDED
    _answers(rdns_on, "192.0.2.2", [])
    _answers(rdns_on, "2001:db8:10::2", [])
    wait_for(lambda: not ReverseDNSRecord.objects.filter(pending=True).exists() or None, 10, message="all delivered")
