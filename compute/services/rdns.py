"""Reverse DNS writes: the PTR each pool address should have, kept in ``ReverseDNSRecord`` (the outbox).

A record's desired state changes in the caller's transaction (an allocation with its VM, a
release with the VM's confirmed deletion, a user's PTR change); ``on_commit`` publishes
``apply_reverse_dns`` and the beat relay (``relay_reverse_dns``) picks up whatever was not
delivered. workers/rdns.py writes PowerDNS and reports back here. Without
``POWERDNS_API_URL`` nothing is recorded: the feature is hidden.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

import audit
from accounts.choices import Role
from accounts.selectors import project_require_role
from compute import dispatch, ipam, rdns
from compute.choices import AllocationState, VMStatus
from compute.models import IPAllocation, IPPool, ReverseDNSRecord, VirtualMachine
from controlplane.errors import Conflict, InvalidInput, NotFound

logger = logging.getLogger(__name__)
RETRY_BASE_SECONDS = 5
RETRY_MAX_SECONDS = 3600


def rdns_enabled() -> bool:
    return bool(settings.POWERDNS_API_URL)


def rdns_zone(pool: IPPool, family: int) -> str:
    """The pool's reverse zone for one family (the operator's, checked on save, or derived)."""
    zone = getattr(pool, f"ipv{family}_reverse_zone").strip()
    prefix = getattr(pool, f"ipv{family}_prefix")
    return rdns.check_zone(zone, prefix) if zone else rdns.default_zone(prefix)


def _desire(*, address: str, zone: str, ptr: str, vm: VirtualMachine | None, custom: bool) -> ReverseDNSRecord | None:
    """Set the PTR ``address`` should have ("" = none) and publish its delivery after commit."""
    return _desire_many([{"address": address, "zone": zone, "ptr": ptr, "vm": vm, "custom": custom}]).get(address)


def _desire_many(wanted: list[dict]) -> dict[str, ReverseDNSRecord]:
    """``_desire`` for many addresses (a dict of its arguments each): the records there are
    locked and read in one statement, the new ones inserted in one, published together."""
    addresses = [item["address"] for item in wanted]
    existing = {
        record.address: record
        for record in ReverseDNSRecord.objects.select_for_update().filter(address__in=addresses).order_by("address")
    }
    records, new = {}, []
    for item in wanted:
        record = existing.get(item["address"])
        if record is None:
            if not item["ptr"]:
                continue  # never had one: nothing to remove
            record = ReverseDNSRecord(**item)
            new.append(record)
        else:
            record.zone, record.ptr, record.vm, record.custom = item["zone"], item["ptr"], item["vm"], item["custom"]
            record.version += 1
            record.pending, record.attempts, record.next_attempt_at = True, 0, timezone.now()
            record.save()
        records[record.address] = record
    ReverseDNSRecord.objects.bulk_create(new)
    dispatch.publish_reverse_dns_many(record_ids=[record.pk for record in records.values()])
    return records


def rdns_default_for_allocations(*, vm: VirtualMachine, allocations: list[IPAllocation]) -> None:
    """New addresses of ``vm`` get the operator's default PTR (REVERSE_DNS_DEFAULT_PTR), if any."""
    rdns_default_for_many(vm_allocations=[(vm, allocations)])


def rdns_default_for_many(*, vm_allocations: list[tuple[VirtualMachine, list[IPAllocation]]]) -> None:
    """``rdns_default_for_allocations`` for many new VMs at once (a batch), in bulk statements."""
    if not rdns_enabled():
        return
    wanted = []
    for vm, allocations in vm_allocations:
        for allocation in allocations:
            try:
                name = rdns.default_name(
                    settings.REVERSE_DNS_DEFAULT_PTR,
                    address=allocation.address,
                    vm_name=vm.name,
                    vm_id=vm.pk,
                    project=vm.project.slug,
                )
                zone = rdns_zone(allocation.pool, allocation.family)
            except rdns.ReverseDNSError as exc:
                logger.error("no default PTR for %s: %s", allocation.address, exc)
                continue
            wanted.append({"address": allocation.address, "zone": zone, "ptr": name, "vm": vm, "custom": False})
    if wanted:
        _desire_many(wanted)


def rdns_clear_addresses(*, addresses: list[str]) -> None:
    """These addresses left their VM: their PTR records go."""
    if not rdns_enabled():
        return
    for record in ReverseDNSRecord.objects.filter(address__in=addresses).exclude(ptr=""):
        _desire(address=record.address, zone=record.zone, ptr="", vm=None, custom=False)


@transaction.atomic
def rdns_ptr_set(*, vm: VirtualMachine, address: str, ptr: str, user, request=None) -> ReverseDNSRecord | None:
    """A user sets the PTR of one of their VM's addresses; an empty ``ptr`` goes back to the default.

    The name must be a host name and, unless the operator turned it off
    (REVERSE_DNS_REQUIRE_FORWARD), resolve forward to the same address."""
    if not rdns_enabled():
        raise NotFound("Reverse DNS is not offered here.")
    project_require_role(user=user, project=vm.project, role=Role.MEMBER)
    vm = VirtualMachine.objects.select_for_update(no_key=True, of=("self",)).select_related("project").get(pk=vm.pk)
    if vm.status in (VMStatus.DELETED,):
        raise Conflict(f"{vm.name} is deleted.")
    try:
        address = ipam.normalise_address(address)
    except ipam.PoolError as exc:
        raise InvalidInput(exc.message, fields={"address": [exc.message]}) from None
    allocation = (
        IPAllocation.objects.filter(vm=vm, state=AllocationState.ASSIGNED, address=address)
        .select_related("pool")
        .first()
    )
    if allocation is None:
        message = f"{address or 'That address'} is not one of {vm.name}'s addresses."
        raise InvalidInput(message, fields={"address": [message]})
    custom = bool((ptr or "").strip())
    try:
        zone = rdns_zone(allocation.pool, allocation.family)
        if custom:
            name = rdns.hostname(ptr)
            if settings.REVERSE_DNS_REQUIRE_FORWARD:
                rdns.forward_confirm(name, address, servers=settings.REVERSE_DNS_RESOLVERS)
        else:
            name = rdns.default_name(
                settings.REVERSE_DNS_DEFAULT_PTR, address=address, vm_name=vm.name, vm_id=vm.pk, project=vm.project.slug
            )
    except rdns.ReverseDNSError as exc:
        raise InvalidInput(str(exc), fields={"ptr": [str(exc)]}) from None
    record = _desire(address=address, zone=zone, ptr=name, vm=vm, custom=custom)
    audit.record(
        actor=user,
        action="vm.ptr_set",
        target=vm,
        details={"address": address, "ptr": name, "custom": custom},
        request=request,
    )
    return record


def rdns_mark_applied(*, record_id: int, version: int) -> bool:
    """PowerDNS has ``version``: done unless the record changed meanwhile (then it stays pending)."""
    return bool(
        ReverseDNSRecord.objects.filter(pk=record_id, version=version).update(
            pending=False,
            applied_version=version,
            attempts=0,
            last_error="",
            applied_at=timezone.now(),
        )
    )


def rdns_mark_failed(*, record_id: int, version: int, error: str) -> None:
    """Delivery of ``version`` failed: try again later (exponential backoff with jitter, capped).
    A short wait is published now with a countdown; a longer one is left to the beat relay."""
    record = ReverseDNSRecord.objects.filter(pk=record_id, version=version).first()
    if record is None:
        return
    delay = min(RETRY_BASE_SECONDS * 2**record.attempts, RETRY_MAX_SECONDS) * random.uniform(0.8, 1.2)
    ReverseDNSRecord.objects.filter(pk=record_id, version=version).update(
        attempts=F("attempts") + 1, last_error=error[:2000], next_attempt_at=timezone.now() + timedelta(seconds=delay)
    )
    logger.warning("reverse DNS for %s not written (attempt %s): %s", record.address, record.attempts + 1, error)
    if delay <= settings.REVERSE_DNS_RELAY_INTERVAL_SECONDS:
        dispatch.publish_reverse_dns(record_id=record_id, on_commit=False, countdown=delay)


def rdns_lease(*, record_id: int, seconds: float = 60) -> bool:
    """Take the record for writing (one writer at a time); False if it is done or another worker has it."""
    now = timezone.now()
    return bool(
        ReverseDNSRecord.objects.filter(pk=record_id, pending=True)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=now + timedelta(seconds=seconds))
    )


def rdns_lease_release(*, record_id: int) -> None:
    ReverseDNSRecord.objects.filter(pk=record_id).update(lease_until=None)


def rdns_relay(*, limit: int = 200) -> int:
    """Publish delivery of records still pending and due (missed publish, failed write, dead worker)."""
    now = timezone.now()
    ids = list(
        ReverseDNSRecord.objects.filter(pending=True, next_attempt_at__lte=now)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for record_id in ids:
        dispatch.publish_reverse_dns(record_id=record_id, on_commit=False)
    return len(ids)


def rdns_retry_now(*, record_ids: list[int]) -> int:
    """An operator asks for pending records to be written now (no backoff)."""
    ids = list(ReverseDNSRecord.objects.filter(pk__in=record_ids, pending=True).values_list("pk", flat=True))
    ReverseDNSRecord.objects.filter(pk__in=ids).update(next_attempt_at=timezone.now())
    for record_id in ids:
        dispatch.publish_reverse_dns(record_id=record_id, on_commit=False)
    return len(ids)
