"""The operators' IPAM admin: pools checked on save, utilisation shown, addresses reserved/assigned/moved."""

from compute.models import IPAllocation, IPPool
from tests.compute.test_ipam import _create, _pool

POOL_FORM = {
    "name": "pool-a",
    "network": "vmbr1",
    "ipv4_prefix": "192.0.2.0/24",
    "ipv4_gateway": "192.0.2.1",
    "ipv6_prefix": "",
    "ipv6_gateway": "",
    "dns_servers": '["192.0.2.53"]',
    "excluded_ranges": "[]",
    "cooldown_seconds": "3600",
    "active": "on",
}


def test_a_pool_with_a_gateway_outside_its_prefix_is_a_form_error(admin_client, simulator):
    response = admin_client.post(
        "/admin/compute/ippool/add/", POOL_FORM | {"hypervisor": simulator.pk, "ipv4_gateway": "10.0.0.1"}
    )
    assert response.status_code == 200 and b"is not a host address of 192.0.2.0/24" in response.content
    assert not IPPool.objects.exists()
    response = admin_client.post("/admin/compute/ippool/add/", POOL_FORM | {"hypervisor": simulator.pk})
    assert response.status_code == 302 and IPPool.objects.get().ipv4_gateway == "192.0.2.1"


def test_utilisation_bulk_reserve_assign_and_move(admin_client, user, project, plan, image, simulator):
    pool = _pool(simulator)
    vm = _create(user, project, plan, image, simulator, "web-1")
    response = admin_client.post(
        "/admin/compute/ippool/",
        {
            "action": "reserve_range",
            "_selected_action": [pool.pk],
            "apply": "1",
            "first": "192.0.2.3",
            "last": "192.0.2.6",
        },
    )
    assert response.status_code == 302
    assert IPAllocation.objects.filter(state="reserved").count() == 4
    page = admin_client.get("/admin/compute/ippool/").content.decode()
    assert "IPv4: 1 assigned, 4 reserved, 0 cooling, 0 free (100.0% used)" in page  # a /29 minus gateway

    # An address already taken is a form error; a free one is assigned to the VM
    response = admin_client.post("/admin/compute/ipallocation/add/", {"pool": pool.pk, "ip": "192.0.2.3"})
    assert response.status_code == 200 and b"already taken" in response.content
    response = admin_client.post(
        "/admin/compute/ipallocation/add/", {"pool": pool.pk, "ip": "2001:db8:10::99", "vm": vm.pk}
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    extra = IPAllocation.objects.get(address="2001:db8:10::99")
    assert (extra.vm, extra.state) == (vm, "assigned")

    # Moved back to reserved
    response = admin_client.post(f"/admin/compute/ipallocation/{extra.pk}/change/", {"vm": ""})
    assert response.status_code == 302
    extra.refresh_from_db()
    assert (extra.vm, extra.state) == (None, "reserved")
