"""Reverse DNS against a real PowerDNS Authoritative (tests/fixtures/powerdns.py): PTR records
written on allocation, changed by the user (validated, forward-confirmed), removed on release;
failed writes retried; every answer checked by querying the server over DNS."""

import pytest
from django.utils import timezone

from compute import rdns, services
from compute.models import IPPool, ReverseDNSRecord
from compute.services.ipam import ipam_pool_check
from compute.services.rdns import rdns_ptr_set, rdns_relay
from controlplane.errors import InvalidInput, NotFound
from tests.compute.test_ipam import _create, _pool
from workers import rdns as rdns_worker

V4, V6 = "192.0.2.2", "2001:db8:10::2"


def _deliver() -> list[str]:
    """What the apply tasks would do: write every pending record once."""
    return [
        rdns_worker.apply_record(pk)
        for pk in ReverseDNSRecord.objects.filter(pending=True).values_list("pk", flat=True)
    ]


@pytest.fixture
def vm(rdns_on, user, project, plan, image, simulator):
    _pool(simulator)
    return _create(user, project, plan, image, simulator, "mail-1")


def test_a_new_vms_addresses_get_the_default_ptr_in_powerdns_v4_and_v6(vm, rdns_on):
    records = {r.address: r for r in ReverseDNSRecord.objects.all()}
    assert records[V4].ptr == "ip-192-0-2-2.cloud.test." and records[V4].pending
    assert records[V6].zone == "0.1.0.0.8.b.d.0.1.0.0.2.ip6.arpa."  # nibble zone of the /48
    assert rdns_on.ptr(V4) == []  # not written until delivered

    assert _deliver() == ["applied", "applied"]  # the reverse zones are created on the way

    assert rdns_on.ptr(V4) == ["ip-192-0-2-2.cloud.test."]
    assert rdns_on.ptr(V6) == ["ip-2001-db8-10--2.cloud.test."]
    assert not ReverseDNSRecord.objects.filter(pending=True).exists()


def test_a_user_sets_a_forward_confirmed_ptr_and_powerdns_answers_it(vm, rdns_on, user):
    _deliver()
    with pytest.raises(InvalidInput, match="must resolve to 192.0.2.2") as caught:
        rdns_ptr_set(vm=vm, address=V4, ptr="mail.customer.test", user=user)
    assert "ptr" in caught.value.fields
    assert ReverseDNSRecord.objects.get(address=V4).version == 1  # nothing written

    rdns_on.add_forward("mail.customer.test.", "192.0.2.99")  # resolves, but elsewhere
    with pytest.raises(InvalidInput, match="resolves to 192.0.2.99"):
        rdns_ptr_set(vm=vm, address=V4, ptr="mail.customer.test", user=user)

    rdns_on.add_forward("mail.customer.test.", V4)
    record = rdns_ptr_set(vm=vm, address=V4, ptr="Mail.Customer.Test", user=user)
    assert (record.ptr, record.custom, record.pending) == ("mail.customer.test.", True, True)
    assert _deliver() == ["applied"]
    assert rdns_on.ptr(V4) == ["mail.customer.test."]

    rdns_on.add_forward("mail6.customer.test.", V6)
    rdns_ptr_set(vm=vm, address=V6, ptr="mail6.customer.test.", user=user)
    _deliver()
    assert rdns_on.ptr(V6) == ["mail6.customer.test."]

    # Empty: back to the operator's default
    rdns_ptr_set(vm=vm, address=V4, ptr="", user=user)
    _deliver()
    assert rdns_on.ptr(V4) == ["ip-192-0-2-2.cloud.test."]


@pytest.mark.parametrize(
    ("ptr", "message"),
    [
        ("bad name.customer.test", "not a valid host name"),
        ("-bad.customer.test", "not a valid host name"),
        ("localhost", "not a fully qualified host name"),
        ("host.123", "last label is a number"),
        ("mäil.customer.test", "punycode"),
        ("a" * 64 + ".customer.test", "not a valid host name"),
    ],
)
def test_bad_names_are_refused_before_any_lookup(vm, rdns_on, user, ptr, message):
    with pytest.raises(InvalidInput, match=message):
        rdns_ptr_set(vm=vm, address=V4, ptr=ptr, user=user)


def test_only_the_vms_own_addresses_and_only_where_offered(vm, rdns_on, user, settings):
    with pytest.raises(InvalidInput, match="not one of mail-1's addresses"):
        rdns_ptr_set(vm=vm, address="192.0.2.3", ptr="x.customer.test", user=user)
    with pytest.raises(InvalidInput, match="is not an IP address"):
        rdns_ptr_set(vm=vm, address="192.0.2.2\x00", ptr="x.customer.test", user=user)
    settings.POWERDNS_API_URL = ""
    with pytest.raises(NotFound, match="not offered"):
        rdns_ptr_set(vm=vm, address=V4, ptr="x.customer.test", user=user)


def test_operator_policy_can_drop_forward_confirmation(vm, rdns_on, user, settings):
    settings.REVERSE_DNS_REQUIRE_FORWARD = False
    rdns_ptr_set(vm=vm, address=V4, ptr="unconfirmed.example.net", user=user)
    _deliver()
    assert rdns_on.ptr(V4) == ["unconfirmed.example.net."]


def test_a_deleted_vms_ptr_records_are_removed(vm, rdns_on):
    _deliver()
    services.vm_record_status(vm=vm, status="active", observed=None, source="test")
    assert rdns_on.ptr(V4) == ["ip-192-0-2-2.cloud.test."]  # kept while the guest exists
    services.vm_record_status(vm=vm, status="deleted", observed=None, source="test")
    assert set(ReverseDNSRecord.objects.values_list("ptr", "pending")) == {("", True)}
    assert _deliver() == ["applied", "applied"]
    assert rdns_on.ptr(V4) == [] and rdns_on.ptr(V6) == []


def test_powerdns_down_is_retried_with_backoff_then_delivered(vm, rdns_on, settings):
    real = settings.POWERDNS_API_URL
    settings.POWERDNS_API_URL = "http://127.0.0.1:9"  # nothing listens there
    assert _deliver() == ["failed", "failed"]
    record = ReverseDNSRecord.objects.get(address=V4)
    assert record.pending and record.attempts == 1 and "unreachable" in record.last_error
    assert record.next_attempt_at > timezone.now() and record.lease_until is None
    assert rdns_relay() == 0  # not due yet

    settings.POWERDNS_API_URL = real
    ReverseDNSRecord.objects.update(next_attempt_at=timezone.now())
    assert rdns_relay() == 2  # published again
    assert _deliver() == ["applied", "applied"]
    assert rdns_on.ptr(V4) == ["ip-192-0-2-2.cloud.test."]
    assert ReverseDNSRecord.objects.get(address=V4).last_error == ""


def test_a_change_made_while_a_write_is_in_flight_is_written_before_the_lease_goes(vm, rdns_on, user, monkeypatch):
    rdns_on.add_forward("late.customer.test.", V4)
    real_set = rdns_worker.PowerDNS.set_ptr
    calls = []

    def set_ptr(self, **kwargs):
        real_set(self, **kwargs)
        calls.append(kwargs["target"])
        if len(calls) == 1:  # the user changes it while the first write is on the wire
            rdns_ptr_set(vm=vm, address=V4, ptr="late.customer.test", user=user)

    monkeypatch.setattr(rdns_worker.PowerDNS, "set_ptr", set_ptr)
    v4 = ReverseDNSRecord.objects.get(address=V4)
    assert rdns_worker.apply_record(v4.pk) == "applied"
    assert calls == ["ip-192-0-2-2.cloud.test.", "late.customer.test."]
    assert rdns_on.ptr(V4) == ["late.customer.test."]
    v4.refresh_from_db()
    assert not v4.pending and v4.applied_version == v4.version == 2
    assert rdns_worker.apply_record(v4.pk) == "not pending or busy"


def test_pool_reverse_zones_must_hold_the_prefix(simulator):
    pool = IPPool(
        name="p", hypervisor=simulator, ipv4_prefix="198.51.100.0/24", ipv4_reverse_zone="101.51.198.in-addr.arpa"
    )
    with pytest.raises(InvalidInput) as caught:
        ipam_pool_check(pool=pool)
    assert "ipv4_reverse_zone" in caught.value.fields and "100.51.198.in-addr.arpa." in caught.value.message
    pool.ipv4_reverse_zone = "51.198.in-addr.arpa."  # a larger zone holds it
    ipam_pool_check(pool=pool)
    assert rdns.default_zone("198.51.100.64/26") == "100.51.198.in-addr.arpa."


def test_without_powerdns_nothing_is_recorded(user, project, plan, image, simulator, settings):
    settings.POWERDNS_API_URL = ""
    settings.REVERSE_DNS_DEFAULT_PTR = "ip-{dashed}.cloud.test."
    _pool(simulator)
    _create(user, project, plan, image, simulator, "web-1")
    assert not ReverseDNSRecord.objects.exists()
