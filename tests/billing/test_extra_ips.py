"""Additional IPs, the plan's priced add-on: added from the hypervisor's pool (IPAM), shown in the
API and on the VM page, billed per second held in hourly usage records, invoiced on their own line."""

from decimal import Decimal

import pytest

from billing import services
from billing.models import UsageRecord
from compute import selectors
from compute.models import ExtraIPHolding, IPAllocation
from compute.services.ipam import vm_extra_ip_add, vm_extra_ip_remove
from controlplane.errors import Conflict, NotFound
from tests.compute.test_ipam import _pool
from tests.fixtures.billing import HOUR, at, fund, make_vm, set_profile
from tests.fixtures.factories import PlanFactory

D = Decimal
T0 = at("2025-05-01 04:30")  # 10:00 IST, a slot boundary


@pytest.fixture
def ip_plan(db):
    return PlanFactory(
        price_hourly_running=D("10.0000"),
        price_hourly_stopped=D("1.0000"),
        max_extra_ips=2,
        price_hourly_extra_ip=D("1.2000"),
    )


@pytest.fixture
def vm(project, ip_plan, image, simulator, user):
    _pool(simulator)
    return make_vm(project, ip_plan, image, simulator, "web-1", [(T0, "active")])


def test_a_plan_without_the_add_on_refuses(project, plan, image, simulator, user):
    _pool(simulator)
    vm = make_vm(project, plan, image, simulator, "web-1", [(T0, "active")])
    with pytest.raises(Conflict, match="offers no additional IP"):
        vm_extra_ip_add(vm=vm, user=user)
    assert not ExtraIPHolding.objects.exists()


def test_added_from_the_pool_up_to_the_plans_limit_and_given_back(vm, user):
    first = vm_extra_ip_add(vm=vm, user=user)
    second = vm_extra_ip_add(vm=vm, family=6, user=user)
    assert (first.address, first.extra, second.address) == ("192.0.2.2", True, "2001:db8:10::2")
    assert selectors.vm_network_config(vm=vm) == {}  # the guest config keeps the primary addresses only
    with pytest.raises(Conflict, match="the most plan") as caught:
        vm_extra_ip_add(vm=vm, user=user)
    assert caught.value.code == "extra_ip_limit"

    vm_extra_ip_remove(vm=vm, address="192.0.2.2", user=user)
    assert IPAllocation.objects.get(address="192.0.2.2").state == "cooling"
    holding = ExtraIPHolding.objects.get(address="192.0.2.2")
    assert holding.ended_at is not None
    with pytest.raises(NotFound, match="not an additional IP"):
        vm_extra_ip_remove(vm=vm, address="192.0.2.2", user=user)
    with pytest.raises(NotFound, match="not an additional IP"):
        vm_extra_ip_remove(vm=vm, address="web\x00", user=user)
    assert vm_extra_ip_add(vm=vm, user=user).address == "192.0.2.3"  # the given-back one cools down


def test_billed_per_second_held_by_the_hour_and_invoiced_on_its_own_line(vm, user, project, supplier):
    allocation = vm_extra_ip_add(vm=vm, user=user)
    # held from 00:30 into the first hour until 02:15 into the third
    ExtraIPHolding.objects.filter(address=allocation.address).update(
        started_at=T0 + HOUR / 2, metered_until=T0 + HOUR / 2, ended_at=T0 + 2 * HOUR + HOUR / 4
    )
    services.usage_meter(until=T0 + 4 * HOUR)
    services.usage_meter(until=T0 + 4 * HOUR)  # again: nothing twice
    rows = list(
        UsageRecord.objects.exclude(item="")
        .order_by("hour_start")
        .values_list("hour_start", "running_seconds", "amount")
    )
    assert rows == [
        (T0, 1800, D("0.600000")),
        (T0 + HOUR, 3600, D("1.200000")),
        (T0 + 2 * HOUR, 900, D("0.300000")),
    ]
    assert UsageRecord.objects.filter(item="").count() == 4  # the server's own hours, unchanged

    set_profile(project, "karnataka")
    fund(project, "1000")
    services.usage_charge_pending()
    invoice = services.invoice_issue(project=project, actor="system:tests", at=T0 + 10 * HOUR)
    line = invoice.lines.get(description__startswith="Additional IP")
    assert line.description == "Additional IP 192.0.2.2 of web-1"
    assert (line.quantity, line.rate, line.taxable) == (D("1.7500"), D("1.2000"), D("2.10"))


def test_api_and_vm_page(vm, api, project):
    response = api.post(f"/api/v1/virtual-machines/{vm.pk}/extra-ips/", {"family": 4}, format="json")
    assert response.status_code == 201 and response.json() == {"address": "192.0.2.2", "family": 4}
    addresses = api.get(f"/api/v1/virtual-machines/{vm.pk}/").json()["addresses"]
    assert {"address": "192.0.2.2", "family": 4, "ptr": "", "ptr_pending": False, "extra": True} in addresses
    page = api.get(f"/projects/{project.slug}/vms/{vm.pk}/").content.decode()
    assert "<code>192.0.2.2</code>" in page and "Additional" in page and "1.2000/hour" in page

    response = api.post(f"/api/v1/virtual-machines/{vm.pk}/extra-ips/", {"family": 5}, format="json")
    assert response.status_code == 400
    api.post(f"/api/v1/virtual-machines/{vm.pk}/extra-ips/", {"family": 4}, format="json")
    response = api.post(f"/api/v1/virtual-machines/{vm.pk}/extra-ips/", {"family": 4}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "extra_ip_limit"

    assert api.delete(f"/api/v1/virtual-machines/{vm.pk}/extra-ips/192.0.2.2/").status_code == 204
    assert api.delete(f"/api/v1/virtual-machines/{vm.pk}/extra-ips/192.0.2.2/").status_code == 404
