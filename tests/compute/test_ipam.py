"""IP pools: definition checks, allocation with the VM, exhaustion, cool-down, concurrency."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from compute import ipam, selectors, services
from compute.models import IPAllocation, IPPool, ProjectQuota, VirtualMachine, VMRequest
from compute.services.ipam import ipam_address_hold, ipam_address_move, ipam_pool_check, ipam_range_reserve
from controlplane.errors import Conflict, InvalidInput
from tests.fixtures.factories import UserFactory, make_billable


def _pool(hypervisor, **fields):
    values = {
        "name": "pool-a",
        "hypervisor": hypervisor,
        "ipv4_prefix": "192.0.2.0/29",
        "ipv4_gateway": "192.0.2.1",
        "ipv6_prefix": "2001:db8:10::/48",
        "ipv6_gateway": "2001:db8:10::1",
        "dns_servers": ["192.0.2.53", "2001:db8::53"],
    }
    pool = IPPool(**(values | fields))
    ipam_pool_check(pool=pool)
    pool.save()
    return pool


def _create(user, project, plan, image, hypervisor, name):
    request = services.vm_request_create(
        user=user, project=project, plan=plan, image=image, hypervisor=hypervisor, name=name
    )
    return VirtualMachine.objects.get(request=request)


# -- arithmetic ------------------------------------------------------------------------------


def test_a_48_is_never_enumerated_and_gaps_are_found_between_taken_offsets():
    layout = ipam.layout(prefix="2001:db8::/48", gateway="2001:db8::1", excluded=["2001:db8::2-2001:db8::9"], family=6)
    assert layout.capacity() == ipam.MAX_OFFSET - 9  # offsets 1..2**62 minus 9 skipped: counted, not listed
    assert layout.next_free(iter([])) == 10
    assert layout.next_free(iter([10, 11, 13])) == 12
    assert str(layout.address(layout.next_free(iter([10, 11, 12])))) == "2001:db8::d"
    # many at once (a batch): one pass, skipping taken and excluded offsets, fewer when it runs out
    assert layout.free_offsets(iter([10, 11, 13]), 3) == [12, 14, 15]
    small = ipam.layout(prefix="192.0.2.0/29", gateway="192.0.2.1", excluded=["192.0.2.3"], family=4)
    assert small.free_offsets(iter([4]), 10) == [2, 5, 6]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"ipv4_gateway": "192.0.3.1"}, "ipv4_gateway", "not a host address"),
        ({"ipv4_prefix": "192.0.2.5/29"}, "ipv4_prefix", "not a network prefix"),
        ({"ipv4_prefix": "2001:db8::/64", "ipv4_gateway": ""}, "ipv4_prefix", "not an IPv4 prefix"),
        ({"ipv4_prefix": "", "ipv4_gateway": "", "ipv6_prefix": "", "ipv6_gateway": ""}, "ipv4_prefix", "Give"),
        ({"excluded_ranges": ["192.0.2.5-192.0.9.9"]}, "excluded_ranges", "not inside"),
        ({"dns_servers": ["resolver.example"]}, "dns_servers", "not an IP address"),
    ],
)
def test_bad_pool_definitions_are_refused_naming_the_field(simulator, fields, field, message):
    with pytest.raises(InvalidInput) as caught:
        _pool(simulator, **fields)
    assert field in caught.value.fields and message in caught.value.message
    assert not IPPool.objects.exists()


def test_overlapping_pools_are_refused(simulator):
    _pool(simulator)
    with pytest.raises(InvalidInput, match="overlaps pool pool-a"):
        _pool(simulator, name="pool-b", ipv4_prefix="192.0.2.0/24", ipv4_gateway="", ipv6_prefix="", ipv6_gateway="")
    with pytest.raises(InvalidInput, match="overlaps pool pool-a"):
        _pool(
            simulator,
            name="pool-c",
            ipv4_prefix="198.51.100.0/24",
            ipv4_gateway="",
            ipv6_prefix="2001:db8:10:5::/64",
            ipv6_gateway="",
        )


# -- allocation with the VM -------------------------------------------------------------------


def test_a_new_vm_gets_one_address_per_family_and_the_spec_carries_them(user, project, plan, image, simulator):
    _pool(simulator, excluded_ranges=["192.0.2.2"])
    vm = _create(user, project, plan, image, simulator, "web-1")
    assert sorted(a.address for a in vm.ip_allocations.all()) == ["192.0.2.3", "2001:db8:10::2"]
    assert selectors.vm_network_config(vm=vm) == {
        "dns": ["192.0.2.53", "2001:db8::53"],
        "network": "",
        "ipv4": {"address": "192.0.2.3", "prefix_length": 29, "gateway": "192.0.2.1"},
        "ipv6": {"address": "2001:db8:10::2", "prefix_length": 48, "gateway": "2001:db8:10::1"},
    }


def test_no_pool_means_no_static_addressing(user, project, plan, image, simulator):
    vm = _create(user, project, plan, image, simulator, "web-1")
    assert not vm.ip_allocations.exists() and selectors.vm_network_config(vm=vm) == {}


def test_an_exhausted_pool_refuses_the_request_before_anything_is_built(user, project, plan, image, simulator, caplog):
    _pool(simulator, ipv4_prefix="192.0.2.0/30", ipv4_gateway="192.0.2.1", ipv6_prefix="", ipv6_gateway="")
    _create(user, project, plan, image, simulator, "only-one")  # /30: .1 gateway, .2 taken
    used = ProjectQuota.objects.get(project=project).used_vms
    with pytest.raises(Conflict) as caught:
        _create(user, project, plan, image, simulator, "one-too-many")
    assert caught.value.code == "ip_pool_exhausted" and "No IP address is free" in caught.value.message
    assert not VMRequest.objects.filter(name="one-too-many").exists()
    assert not VirtualMachine.objects.filter(name="one-too-many").exists()
    assert ProjectQuota.objects.get(project=project).used_vms == used
    assert any("exhausted" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)


def test_a_deleted_vms_address_cools_down_before_it_is_handed_out_again(user, project, plan, image, simulator):
    pool = _pool(simulator, ipv4_prefix="192.0.2.0/30", ipv6_prefix="", ipv6_gateway="", cooldown_seconds=3600)
    vm = _create(user, project, plan, image, simulator, "first")
    services.vm_record_status(vm=vm, status="active", observed=None, source="test")
    assert vm.ip_allocations.get().state == "assigned"  # never released while the guest exists
    services.vm_record_status(vm=vm, status="deleted", observed=None, source="test")
    assert vm.ip_allocations.get().state == "cooling"
    with pytest.raises(Conflict, match="No IP address is free"):
        _create(user, project, plan, image, simulator, "second")
    IPAllocation.objects.filter(pool=pool).update(cool_until=timezone.now() - timedelta(seconds=1))
    second = _create(user, project, plan, image, simulator, "second")
    assert second.ip_allocations.get().address == "192.0.2.2"


def test_operators_reserve_assign_and_move_addresses(user, project, plan, image, simulator, admin_user):
    pool = _pool(simulator)
    assert ipam_range_reserve(pool=pool, first="192.0.2.2", last="192.0.2.4", actor=admin_user) == 3
    vm = _create(user, project, plan, image, simulator, "web-1")
    assert vm.ip_allocations.get(family=4).address == "192.0.2.5"  # reserved ones skipped
    with pytest.raises(Conflict, match="already taken"):
        ipam_address_hold(pool=pool, address="192.0.2.5", actor=admin_user)
    with pytest.raises(InvalidInput, match="outside the pool"):
        ipam_address_hold(pool=pool, address="198.51.100.7", actor=admin_user)
    with pytest.raises(InvalidInput, match="not a usable host address"):  # beyond the first 2**62 of the /48
        ipam_address_hold(pool=pool, address="2001:db8:10:ffff::7", actor=admin_user)
    extra = ipam_address_hold(pool=pool, address="2001:db8:10::ff:7", vm=vm, actor=admin_user)
    assert extra.state == "assigned" and extra.vm == vm
    moved = ipam_address_move(allocation=extra, vm=None, actor=admin_user)
    assert moved.state == "reserved" and moved.vm is None
    usage = selectors.ip_pool_usage(pool=pool)
    assert usage[4] == {"assigned": 1, "reserved": 3, "cooling": 0, "capacity": 5, "free": 1, "percent": 80.0}


# -- concurrency ------------------------------------------------------------------------------

THREADS, EACH = 20, 10


@pytest.mark.django_db(transaction=True)
def test_200_concurrent_creates_on_one_pool_get_200_distinct_addresses(plan, image, simulator):
    # Given one /24 pool and 20 projects, each creating 10 VMs from its own thread
    assert connection.vendor == "postgresql", "the concurrency guarantee is a PostgreSQL one"
    # No worker builds them: a session's live worker (started by an earlier test) serving the
    # simulator's queue would still be writing these 200 VMs while the database is flushed.
    simulator.queue = "nobody-serves-this"
    simulator.save()
    _pool(simulator, ipv4_prefix="192.0.2.0/24", ipv6_prefix="2001:db8:10::/64")
    owners = []
    for _ in range(THREADS):
        owner = UserFactory()
        project = owner.projects.get()
        make_billable(project, amount="100000.00")
        ProjectQuota.objects.filter(project=project).update(max_vms=EACH, max_vcpus=999, max_memory_mib=10**7)
        owners.append((owner, project))
    start, errors = threading.Event(), []

    def creator(n):
        owner, project = owners[n]
        try:
            start.wait(60)
            for i in range(EACH):
                _create(owner, project, plan, image, simulator, f"vm-{n}-{i}")
        except Exception as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=creator, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    # When they all create at once
    start.set()
    for thread in threads:
        thread.join(300)

    # Then 200 VMs hold 200 distinct IPv4 and 200 distinct IPv6 addresses
    assert not errors, errors[:3]
    assert VirtualMachine.objects.count() == THREADS * EACH
    for family in (4, 6):
        addresses = list(IPAllocation.objects.filter(family=family).values_list("address", flat=True))
        assert len(addresses) == len(set(addresses)) == THREADS * EACH
    assert IPAllocation.objects.filter(vm=None).count() == 0
