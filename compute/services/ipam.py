"""IP address management: pools checked, addresses allocated with the VM, released after a cool-down.

Allocation runs inside the transaction that creates the VM (``vm_request_approve``): the
pool row is locked (creates on one pool queue behind each other for a moment) and the
unique constraints on (pool, family, offset) and (pool, address) stay the guarantee. A
deleted VM's address goes to ``cooling`` and is handed out again only after the pool's
cool-down; it is released only once the guest is confirmed deleted.
"""

from __future__ import annotations

import ipaddress
import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

import audit
from accounts.choices import Role
from accounts.selectors import project_require_role
from compute import ipam, rdns
from compute.choices import AllocationState, VMStatus
from compute.models import ExtraIPHolding, IPAllocation, IPPool, VirtualMachine
from controlplane.errors import Conflict, InvalidInput, NotFound

from .rdns import rdns_clear_addresses, rdns_default_for_allocations, rdns_default_for_many, rdns_zone

logger = logging.getLogger(__name__)
ALLOCATE_ATTEMPTS = 5


def _invalid(exc: ipam.PoolError) -> InvalidInput:
    return InvalidInput(exc.message, fields={exc.field: [exc.message]})


def ipam_pool_check(*, pool: IPPool) -> None:
    """Validate a pool definition before it is saved; raises InvalidInput naming the field."""
    try:
        if not (pool.ipv4_prefix.strip() or pool.ipv6_prefix.strip()):
            raise ipam.PoolError("Give an IPv4 prefix, an IPv6 prefix, or both.", field="ipv4_prefix")
        for family in (4, 6):
            if getattr(pool, f"ipv{family}_gateway").strip() and not getattr(pool, f"ipv{family}_prefix").strip():
                raise ipam.PoolError("A gateway needs its prefix.", field=f"ipv{family}_gateway")
        if not isinstance(pool.dns_servers, list) or not isinstance(pool.excluded_ranges, list):
            raise ipam.PoolError("Give a list of addresses.", field="dns_servers")
        for server in pool.dns_servers:
            try:
                ipaddress.ip_address(str(server))
            except ValueError:
                raise ipam.PoolError(f"{server!r} is not an IP address.", field="dns_servers") from None
        layouts = ipam.pool_layouts(pool)
    except ipam.PoolError as exc:
        raise _invalid(exc) from None
    for layout in layouts:
        try:
            rdns_zone(pool, layout.family)
        except rdns.ReverseDNSError as exc:
            field = f"ipv{layout.family}_reverse_zone"
            raise InvalidInput(str(exc), fields={field: [str(exc)]}) from None
    others = IPPool.objects.exclude(pk=pool.pk)
    for layout in layouts:
        field = f"ipv{layout.family}_prefix"
        for other in others.only("name", field):
            theirs = getattr(other, field)
            if theirs and ipam.overlaps(theirs, str(layout.network)):
                message = f"{layout.network} overlaps pool {other.name} ({theirs})."
                raise InvalidInput(message, fields={field: [message]})


def _purge_cooled(pool: IPPool) -> None:
    IPAllocation.objects.filter(pool=pool, state=AllocationState.COOLING, cool_until__lte=timezone.now()).delete()


def _taken(pool: IPPool, layout: ipam.Layout):
    """The offsets of one family of the pool in use or cooling, ascending (streamed)."""
    return (
        IPAllocation.objects.filter(pool=pool, family=layout.family, offset__gte=layout.first)
        .order_by("offset")
        .values_list("offset", flat=True)
        .iterator(chunk_size=2000)
    )


def _take(*, pool: IPPool, layout: ipam.Layout, vm: VirtualMachine | None, state: str, note: str = "") -> IPAllocation:
    """Insert the next free address of one family; None-safe retry if a racing insert won."""
    for _ in range(ALLOCATE_ATTEMPTS):
        offset = layout.next_free(_taken(pool, layout))
        if offset is None:
            raise Conflict(f"IP pool {pool.name} has no free IPv{layout.family} address.", code="ip_pool_exhausted")
        try:
            with transaction.atomic():
                return IPAllocation.objects.create(
                    pool=pool,
                    family=layout.family,
                    offset=offset,
                    address=str(layout.address(offset)),
                    vm=vm,
                    state=state,
                    note=note,
                )
        except IntegrityError:
            continue
    raise Conflict(f"IP pool {pool.name} is busy; try again.", code="ip_pool_busy")


@transaction.atomic
def ipam_allocate_for_vm(*, vm: VirtualMachine) -> list[IPAllocation]:
    """Give a new VM one address per family of the first active pool of its hypervisor
    with room. No pools on the hypervisor: nothing to do (its own DHCP / the cloud's
    addressing). Pools but none with room: Conflict ``ip_pool_exhausted`` (the caller's
    transaction, the VM included, rolls back) and an error logged for the operator."""
    pools = list(IPPool.objects.filter(hypervisor_id=vm.hypervisor_id, active=True).order_by("name"))
    if not pools:
        return []
    for pool in pools:
        pool = IPPool.objects.select_for_update().get(pk=pool.pk)
        _purge_cooled(pool)
        try:
            layouts = ipam.pool_layouts(pool)
            allocations = []
            with transaction.atomic():
                for layout in layouts:
                    allocations.append(_take(pool=pool, layout=layout, vm=vm, state=AllocationState.ASSIGNED))
            rdns_default_for_allocations(vm=vm, allocations=allocations)
            return allocations
        except Conflict as exc:
            if exc.code != "ip_pool_exhausted":
                raise
        except ipam.PoolError:
            logger.error("IP pool %s is misconfigured; skipped", pool.name)
    logger.error("IP pools of hypervisor %s are exhausted: VM %s refused", vm.hypervisor_id, vm.name)
    raise _exhausted()


def _exhausted() -> Conflict:
    return Conflict(
        "No IP address is free for a new VM on this hypervisor; the operator has been alerted. "
        "Try another location or try again later.",
        code="ip_pool_exhausted",
    )


@transaction.atomic
def ipam_allocate_for_vms(*, vms: list[VirtualMachine]) -> list[IPAllocation]:
    """``ipam_allocate_for_vm`` for many new VMs of one hypervisor (a batch), in order, by
    the same rule: each VM's addresses from the first active pool with room. Each pool is
    locked and read once and the addresses inserted in one statement. Not room for all:
    Conflict ``ip_pool_exhausted`` (the caller's transaction, every VM, rolls back)."""
    pools = list(IPPool.objects.filter(hypervisor_id=vms[0].hypervisor_id, active=True).order_by("name"))
    if not pools:
        return []
    waiting, rows, given = list(vms), [], {}
    for pool in pools:
        if not waiting:
            break
        pool = IPPool.objects.select_for_update().get(pk=pool.pk)
        _purge_cooled(pool)
        try:
            layouts = ipam.pool_layouts(pool)
        except ipam.PoolError:
            logger.error("IP pool %s is misconfigured; skipped", pool.name)
            continue
        free = [layout.free_offsets(_taken(pool, layout), len(waiting)) for layout in layouts]
        room = min((len(offsets) for offsets in free), default=len(waiting))  # VMs with every family here
        for n, vm in enumerate(waiting[:room]):
            given[vm.pk] = [
                IPAllocation(
                    pool=pool,
                    family=layout.family,
                    offset=offsets[n],
                    address=str(layout.address(offsets[n])),
                    vm=vm,
                    state=AllocationState.ASSIGNED,
                )
                for layout, offsets in zip(layouts, free, strict=True)
            ]
            rows += given[vm.pk]
        waiting = waiting[room:]
    if waiting:
        logger.error("IP pools of hypervisor %s are exhausted: %d VMs refused", vms[0].hypervisor_id, len(vms))
        raise _exhausted()
    try:
        with transaction.atomic():
            allocations = IPAllocation.objects.bulk_create(rows)
    except IntegrityError:  # every writer locks the pool first, so this is not expected
        raise Conflict("The IP pool is busy; try again.", code="ip_pool_busy") from None
    rdns_default_for_many(vm_allocations=[(vm, given[vm.pk]) for vm in vms])
    return allocations


def ipam_release_for_vm(*, vm: VirtualMachine) -> int:
    """The VM is confirmed deleted: its addresses start cooling down. Returns how many."""
    now = timezone.now()
    released = []
    for allocation in IPAllocation.objects.filter(vm=vm, state=AllocationState.ASSIGNED).select_related("pool"):
        if IPAllocation.objects.filter(pk=allocation.pk, state=AllocationState.ASSIGNED).update(
            state=AllocationState.COOLING, cool_until=now + timedelta(seconds=allocation.pool.cooldown_seconds)
        ):
            released.append(allocation.address)
    ExtraIPHolding.objects.filter(vm=vm, ended_at__isnull=True).update(ended_at=now)  # billing stops
    rdns_clear_addresses(addresses=released)
    return len(released)


def _layout_for(pool: IPPool, address: str) -> tuple[ipam.Layout, int]:
    family = 6 if ":" in address else 4
    try:
        layout = next((item for item in ipam.pool_layouts(pool) if item.family == family), None)
        if layout is None:
            raise ipam.PoolError(f"Pool {pool.name} has no IPv{family} prefix.", field="address")
        return layout, layout.offset(address)
    except ipam.PoolError as exc:
        raise _invalid(exc) from None


@transaction.atomic
def ipam_address_hold(
    *, pool: IPPool, address: str, actor, vm: VirtualMachine | None = None, note: str = "", request=None
) -> IPAllocation:
    """An operator reserves an address (``vm=None``) or assigns it to a VM."""
    pool = IPPool.objects.select_for_update().get(pk=pool.pk)
    layout, offset = _layout_for(pool, address)
    if vm is not None and vm.hypervisor_id != pool.hypervisor_id:
        raise InvalidInput(f"{vm.name} does not run on {pool.hypervisor}.", fields={"vm": ["Wrong hypervisor."]})
    _purge_cooled(pool)
    try:
        with transaction.atomic():
            allocation = IPAllocation.objects.create(
                pool=pool,
                family=layout.family,
                offset=offset,
                address=str(layout.address(offset)),
                vm=vm,
                state=AllocationState.ASSIGNED if vm else AllocationState.RESERVED,
                note=note[:200],
            )
    except IntegrityError:
        raise Conflict(f"{address} is already taken in {pool.name}.", code="ip_taken") from None
    if vm is not None:
        rdns_default_for_allocations(vm=vm, allocations=[allocation])
    audit.record(
        actor=actor,
        action="admin.action",
        target=allocation.vm or pool,
        project=vm.project if vm else None,
        details={"action": "ip.assign" if vm else "ip.reserve", "address": allocation.address, "pool": pool.name},
        request=request,
    )
    return allocation


@transaction.atomic
def ipam_address_move(*, allocation: IPAllocation, vm: VirtualMachine | None, actor, request=None) -> IPAllocation:
    """An operator moves an address to another VM of the pool's hypervisor, or back to reserved."""
    allocation = IPAllocation.objects.select_for_update().select_related("pool").get(pk=allocation.pk)
    if vm is not None and vm.hypervisor_id != allocation.pool.hypervisor_id:
        raise InvalidInput(
            f"{vm.name} does not run on {allocation.pool.hypervisor}.", fields={"vm": ["Wrong hypervisor."]}
        )
    before = allocation.vm_id
    allocation.vm = vm
    allocation.state = AllocationState.ASSIGNED if vm else AllocationState.RESERVED
    allocation.cool_until = None
    allocation.save(update_fields=["vm", "state", "cool_until"])
    if before != allocation.vm_id:  # the old VM's PTR goes; the new one gets the default
        rdns_clear_addresses(addresses=[allocation.address])
        if vm is not None:
            rdns_default_for_allocations(vm=vm, allocations=[allocation])
    audit.record(
        actor=actor,
        action="admin.action",
        target=vm or allocation.pool,
        project=vm.project if vm else None,
        details={"action": "ip.move", "address": allocation.address, "from_vm": before, "to_vm": vm.pk if vm else None},
        request=request,
    )
    return allocation


@transaction.atomic
def ipam_range_reserve(*, pool: IPPool, first: str, last: str, actor, note: str = "", request=None) -> int:
    """Bulk: reserve every free address from ``first`` to ``last`` (at most 4096)."""
    pool = IPPool.objects.select_for_update().get(pk=pool.pk)
    layout, low = _layout_for(pool, first)
    _, high = _layout_for(pool, last)
    if high < low or high - low >= 4096:
        raise InvalidInput("Give a range of 1 to 4096 addresses, low to high.", fields={"last": ["Bad range."]})
    taken = set(
        IPAllocation.objects.filter(pool=pool, family=layout.family, offset__range=(low, high)).values_list(
            "offset", flat=True
        )
    )
    rows = [
        IPAllocation(
            pool=pool,
            family=layout.family,
            offset=offset,
            address=str(layout.address(offset)),
            state=AllocationState.RESERVED,
            note=note[:200],
        )
        for offset in range(low, high + 1)
        if offset not in taken
    ]
    IPAllocation.objects.bulk_create(rows)
    audit.record(
        actor=actor,
        action="admin.action",
        target=pool,
        details={"action": "ip.reserve_range", "first": first, "last": last, "count": len(rows)},
        request=request,
    )
    return len(rows)


@transaction.atomic
def ipam_address_free(*, allocation: IPAllocation, actor, request=None) -> None:
    """An operator frees a reserved or cooling address now (an assigned one: move it first)."""
    allocation = IPAllocation.objects.select_for_update().select_related("pool").get(pk=allocation.pk)
    if allocation.state == AllocationState.ASSIGNED:
        raise Conflict(f"{allocation.address} is assigned to a VM; move it to reserved first.", code="ip_in_use")
    audit.record(
        actor=actor,
        action="admin.action",
        target=allocation.pool,
        details={"action": "ip.free", "address": allocation.address, "state": allocation.state},
        request=request,
    )
    allocation.delete()


@transaction.atomic
def vm_extra_ip_add(*, vm: VirtualMachine, family: int = 4, user, request=None) -> IPAllocation:
    """A user adds an additional IP (the plan's priced add-on) from the pools of the VM's hypervisor.
    Billed by the hour held (ExtraIPHolding) from now until removed or the VM is deleted. The
    guest is not reconfigured: the user adds the address inside it."""
    project_require_role(user=user, project=vm.project, role=Role.MEMBER)
    vm = (
        VirtualMachine.objects.select_for_update(no_key=True, of=("self",))
        .select_related("plan", "project")
        .get(pk=vm.pk)
    )
    plan = vm.plan
    if family not in (4, 6):
        raise InvalidInput("Choose IPv4 or IPv6.", fields={"family": ["4 or 6."]})
    if plan.max_extra_ips == 0:
        raise Conflict(f"Plan {plan.name} offers no additional IP addresses.", code="extra_ip_not_offered")
    if vm.status not in (VMStatus.ACTIVE, VMStatus.STOPPED, VMStatus.BUILDING):
        raise Conflict(f"Cannot add an address to {vm.name}: it is {vm.get_status_display().lower()}.")
    if vm.project.is_suspended:
        raise Conflict(f"Project {vm.project.name} is suspended.", code="project_suspended")
    if ExtraIPHolding.objects.filter(vm=vm, ended_at__isnull=True).count() >= plan.max_extra_ips:
        raise Conflict(
            f"{vm.name} has {plan.max_extra_ips} additional addresses, the most plan {plan.name} allows.",
            code="extra_ip_limit",
        )
    for pool in IPPool.objects.filter(hypervisor_id=vm.hypervisor_id, active=True).order_by("name"):
        pool = IPPool.objects.select_for_update().get(pk=pool.pk)
        try:
            layout = next((item for item in ipam.pool_layouts(pool) if item.family == family), None)
        except ipam.PoolError:
            logger.error("IP pool %s is misconfigured; skipped", pool.name)
            continue
        if layout is None:
            continue
        _purge_cooled(pool)
        try:
            with transaction.atomic():
                allocation = _take(pool=pool, layout=layout, vm=vm, state=AllocationState.ASSIGNED)
        except Conflict as exc:
            if exc.code != "ip_pool_exhausted":
                raise
            continue
        IPAllocation.objects.filter(pk=allocation.pk).update(extra=True)
        allocation.extra = True
        now = timezone.now()
        ExtraIPHolding.objects.create(
            vm=vm, address=allocation.address, allocation=allocation, started_at=now, metered_until=now
        )
        rdns_default_for_allocations(vm=vm, allocations=[allocation])
        audit.record(
            actor=user,
            action="vm.extra_ip_added",
            target=vm,
            details={"address": allocation.address, "price_hourly": plan.price_hourly_extra_ip},
            request=request,
        )
        return allocation
    logger.error("no IPv%s address free for an additional IP on hypervisor %s", family, vm.hypervisor_id)
    raise Conflict(
        f"No IPv{family} address is free for {vm.name}; the operator has been alerted.", code="ip_pool_exhausted"
    )


@transaction.atomic
def vm_extra_ip_remove(*, vm: VirtualMachine, address: str, user, request=None) -> None:
    """The user gives an additional IP back: billing stops now, it cools down like a deleted VM's."""
    project_require_role(user=user, project=vm.project, role=Role.MEMBER)
    try:
        address = ipam.normalise_address(address)
    except ipam.PoolError:
        address = ""
    allocation = (
        IPAllocation.objects.select_for_update()
        .select_related("pool")
        .filter(vm=vm, extra=True, state=AllocationState.ASSIGNED, address=address)
        .first()
        if address
        else None
    )
    if allocation is None:  # the address is the resource here (API path): 404
        raise NotFound(f"{address or 'That'} is not an additional IP of {vm.name}.")
    now = timezone.now()
    allocation.state = AllocationState.COOLING
    allocation.cool_until = now + timedelta(seconds=allocation.pool.cooldown_seconds)
    allocation.save(update_fields=["state", "cool_until"])
    ExtraIPHolding.objects.filter(vm=vm, address=allocation.address, ended_at__isnull=True).update(ended_at=now)
    rdns_clear_addresses(addresses=[allocation.address])
    audit.record(
        actor=user, action="vm.extra_ip_removed", target=vm, details={"address": allocation.address}, request=request
    )
