"""Snapshot storage: metered per closed month in GiB-hours at the operator's price (0 by
default: nothing), debited once and invoiced on its own line per VM and month."""

from decimal import Decimal

from billing import services
from billing.models import LedgerEntry, SnapshotStorageRecord, UsageCharge
from billing.selectors import billing_settings_get
from compute.choices import SnapshotState
from compute.models import Snapshot
from tests.fixtures.billing import HOUR, at, set_profile
from tests.fixtures.factories import PlanFactory

D = Decimal
GIB = 2**30
MAY = at("2025-05-01 00:00").date()
T0 = at("2025-04-30 18:30")  # 1 May 00:00 IST


def _snapshot(vm, name, size, created, **fields):
    snapshot = Snapshot.objects.create(vm=vm, name=name, backend_ref=f"cp-{name}", size_bytes=size, **fields)
    Snapshot.objects.filter(pk=snapshot.pk).update(created_at=created)  # auto_now_add: set afterwards
    return snapshot


def test_snapshot_storage_is_priced_per_gib_hour_and_invoiced(project, supplier, vm_factory):
    # Given 0.0100 per GiB-hour, and in May a VM with a 2 GiB snapshot for 10 hours and a
    # 0.5 GiB one from 1 May 10:00 to the end of the month (deleted in June)
    services.billing_settings_update(actor="system:tests", snapshot_price_per_gib_hour=D("0.0100"))
    set_profile(project, "karnataka")
    vm = vm_factory([(T0, "active")], plan=PlanFactory(price_hourly_running=D("1.0000")))
    _snapshot(vm, "a", 2 * GIB, T0, state=SnapshotState.DELETED, deleted_at=T0 + 10 * HOUR)
    _snapshot(vm, "b", GIB // 2, T0 + 10 * HOUR, state=SnapshotState.DELETED, deleted_at=at("2025-06-03 00:00"))
    _snapshot(vm, "c", None, T0)  # no size reported (libvirt, Proxmox): not billed

    # When the monthly run invoices May on 1 June
    [invoice] = services.invoice_issue_monthly(now=at("2025-06-01 02:00"))

    # Then: 2 x 10 + 0.5 x (744 - 10) = 387 GiB-hours x 0.01 = 3.87, its own line after the hours
    record = SnapshotStorageRecord.objects.get(vm=vm, period=MAY)
    assert (record.gib_hours, record.amount) == (D("387.000"), D("3.870000"))
    *hours, line = invoice.lines.order_by("position")
    assert [h.unit for h in hours] == ["HRS"]
    assert (line.unit, line.quantity, line.rate, line.taxable, line.vm_id) == (
        "GiB-h",
        D("387.0000"),
        D("0.0100"),
        D("3.87"),
        vm.pk,
    )
    assert line.description == f"Snapshot storage of {vm.name}, May 2025"
    # And it was debited once (a later run adds nothing)
    assert services.snapshot_storage_charge_pending(now=at("2025-06-02 00:00")) == 0
    debits = LedgerEntry.objects.filter(project=project, description__startswith="Snapshot storage")
    assert [e.amount for e in debits] == [-(D("3.87") + D("0.70"))]  # IGST 18 %


def test_nothing_at_price_zero_before_the_month_closed_or_while_missing(project, supplier, vm_factory):
    vm = vm_factory([(T0, "active")], plan=PlanFactory())
    _snapshot(vm, "a", GIB, T0, missing_since=T0 + 24 * HOUR)
    assert services.snapshot_storage_charge_pending(now=at("2025-06-01 02:00")) == 0  # price 0: the default
    services.billing_settings_update(actor="system:tests", snapshot_price_per_gib_hour=D("1.0000"))
    assert services.snapshot_storage_charge_pending(now=at("2025-05-31 18:35")) == 0  # May ended 5 minutes ago
    assert services.snapshot_storage_charge_pending(now=at("2025-05-31 18:45")) == 1
    charge = UsageCharge.objects.get(snapshot_records__vm=vm)
    assert (charge.taxable, charge.period) == (D("24.00"), MAY)  # 1 GiB x 24 h until it went missing
    assert services.snapshot_storage_meter(settings=billing_settings_get(), now=at("2025-07-02")) == 0
