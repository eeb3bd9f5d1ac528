"""Tax invoices and credit notes: the worked examples through the whole
stack, numbering, snapshots, settlement with the hourly debits."""

import threading
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import IntegrityError, connection, connections, transaction

from audit.models import AuditEvent
from billing import services
from billing.models import CreditNote, Invoice, LedgerEntry, UsageCharge, UsageRecord, Wallet
from billing.selectors import ledger_problems
from controlplane.errors import Conflict, InvalidInput
from tests.fixtures.billing import HOUR, at, fund, make_gstin, make_vm, set_profile
from tests.fixtures.factories import PlanFactory, UserFactory

D = Decimal
T0 = at("2025-05-01 04:30")  # 10:00 IST
LATER = at("2025-06-10 06:00")


@pytest.fixture
def ten_rupee_plan(db):
    return PlanFactory(price_hourly_running=D("10.0000"), price_hourly_stopped=D("1.0000"))


def run_hours(project, plan, vm_factory, hours=100, start=T0):
    """A VM active for ``hours`` from ``start``, metered and charged."""
    vm = vm_factory([(start, "active"), (start + hours * HOUR, "deleted")], plan=plan)
    services.usage_meter(until=start + (hours + 1) * HOUR)
    services.usage_charge_pending()
    return vm


@pytest.mark.parametrize(
    "profile, lut, pos, heads, total, endorsement",
    [
        ("maharashtra", False, "27", ("90.00", "90.00", "0.00"), "1180.00", ""),
        ("karnataka", False, "29", ("0.00", "0.00", "180.00"), "1180.00", ""),
        ("karnataka_unregistered", False, "29", ("0.00", "0.00", "180.00"), "1180.00", ""),
        ("sez", False, "27", ("0.00", "0.00", "180.00"), "1180.00", "ON PAYMENT OF INTEGRATED TAX"),
        ("abroad", True, "96", ("0.00", "0.00", "0.00"), "1000.00", "UNDER LETTER OF UNDERTAKING"),
        ("abroad", False, "96", ("0.00", "0.00", "180.00"), "1180.00", "EXPORT ON PAYMENT OF INTEGRATED TAX"),
    ],
)
def test_worked_examples_through_metering_and_invoicing(
    project, supplier, vm_factory, ten_rupee_plan, profile, lut, pos, heads, total, endorsement
):
    # Given the GST.md supplier (Maharashtra) and 100 hours at 10.00/h = taxable 1000.00
    services.billing_settings_update(actor="system:tests", lut_enabled=lut)
    set_profile(project, profile)
    fund(project, "2000")
    run_hours(project, ten_rupee_plan, vm_factory, hours=100)

    # When the invoice is issued
    invoice = services.invoice_issue(project=project, actor="system:tests", at=T0 + 200 * HOUR)

    # Then place of supply, heads and total are the worked example's, to the paisa
    assert invoice.place_of_supply == pos
    assert invoice.taxable_total == D("1000.00")
    assert (invoice.cgst_total, invoice.sgst_total, invoice.igst_total) == tuple(D(h) for h in heads)
    assert invoice.total == D(total) and invoice.round_off == D("0.00")
    assert endorsement in invoice.endorsement
    [line] = invoice.lines.all()
    assert (line.sac_code, line.quantity, line.unit, line.rate, line.taxable) == (
        "998315",
        D("100.0000"),
        "HRS",
        D("10.0000"),
        D("1000.00"),
    )
    # And the hourly debits of this usage equal the invoice total exactly
    usage = sum(LedgerEntry.objects.filter(project=project, kind="usage").values_list("amount", flat=True))
    assert -usage == invoice.total
    assert Wallet.objects.get(project=project).balance == D("2000") - invoice.total


def test_settlement_absorbs_rounding_and_round_off(project, supplier, vm_factory, plan):
    # Given a month charged day by day (24 h x 1.50 = 36.00 + IGST 6.48 each day)
    set_profile(project, "karnataka")
    vm_factory([(at("2025-04-30 18:30"), "active")])
    for day in range(1, 32):
        services.usage_meter(until=at("2025-04-30 18:30") + day * 24 * HOUR)
        services.usage_charge_pending()
    assert UsageCharge.objects.count() == 31
    assert Wallet.objects.get(project=project).balance == D("-1316.88")

    # When the monthly run invoices May on 1 June
    [invoice] = services.invoice_issue_monthly(now=at("2025-06-01 02:00"))

    # Then 744 h x 1.50 = 1116.00 + IGST 200.88 = 1316.88, rounded to 1317 with +0.12
    assert (invoice.taxable_total, invoice.igst_total, invoice.round_off, invoice.total) == (
        D("1116.00"),
        D("200.88"),
        D("0.12"),
        D("1317"),
    )
    settlement = LedgerEntry.objects.get(invoice=invoice)
    assert settlement.amount == D("-0.12") and settlement.kind == "usage"
    assert Wallet.objects.get(project=project).balance == D("-1317.00")
    assert invoice.period_start == at("2025-04-30 18:30") and invoice.period_end == at("2025-05-31 18:30")
    assert ledger_problems() == []


def test_the_monthly_run_waits_for_metering_past_the_months_end(project, supplier, vm_factory, plan):
    set_profile(project, "karnataka")
    vm_factory([(at("2025-05-31 16:30"), "active")])  # 22:00 IST on 31 May
    services.usage_meter(until=at("2025-05-31 17:30"))
    # Two minutes into June (IST) the last May hour cannot be metered yet: no invoice
    assert services.invoice_issue_monthly(now=at("2025-05-31 18:32")) == []
    # Once it can, May is invoiced (two hours); June's usage is left for next month
    services.usage_meter(until=at("2025-05-31 20:30"))
    [invoice] = services.invoice_issue_monthly(now=at("2025-05-31 20:40"))
    assert invoice.lines.get().quantity == D("2.0000")
    assert invoice.period_end == at("2025-05-31 18:30")
    assert UsageRecord.objects.filter(charge__isnull=True, hour_start__gte=at("2025-05-31 18:30")).count() == 2
    assert services.invoice_issue_monthly(now=at("2025-05-31 21:40")) == []


def test_an_invoice_is_an_immutable_snapshot(project, supplier, vm_factory, ten_rupee_plan):
    set_profile(project, "karnataka")
    run_hours(project, ten_rupee_plan, vm_factory, hours=3)
    invoice = services.invoice_issue(project=project, actor="system:tests", at=T0 + 10 * HOUR)
    # Later changes to the supplier, the customer and the plan do not touch it
    services.billing_settings_update(actor="system:tests", legal_name="Renamed Ltd", lut_enabled=True)
    set_profile(project, "maharashtra", legal_name="New Name Pvt Ltd")
    ten_rupee_plan.price_hourly_running = D("99")
    ten_rupee_plan.save()
    invoice = Invoice.objects.get(pk=invoice.pk)
    assert invoice.supplier["legal_name"] == "Cloud Hosting Private Limited"
    assert invoice.customer["gstin"] == make_gstin("29") and invoice.place_of_supply == "29"
    assert invoice.lines.get().rate == D("10.0000")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE billing_invoice SET total = 0 WHERE id = %s", [invoice.pk])
    assert AuditEvent.objects.filter(action="invoice.issued", details__number=invoice.number).exists()


def test_nothing_to_invoice_gives_none_and_uses_no_number(project, supplier):
    assert services.invoice_issue(project=project, actor="system:tests") is None
    set_profile(project, "karnataka")
    assert services.invoice_issue(project=project, actor="system:tests") is None


def test_invoicing_needs_a_configured_supplier(project, vm_factory, ten_rupee_plan):
    run_hours(project, ten_rupee_plan, vm_factory, hours=1)
    with pytest.raises(Conflict, match="legal name, address, PIN, GSTIN"):
        services.invoice_issue(project=project, actor="system:tests")


def test_a_new_financial_year_restarts_the_series(project, supplier, vm_factory, ten_rupee_plan):
    set_profile(project, "karnataka")
    numbers = []
    for issued in ("2026-03-30 10:00", "2026-03-31 18:29", "2026-03-31 18:30", "2026-04-02 10:00"):
        start = at(issued) - 3 * HOUR
        vm_factory([(start, "active"), (start + HOUR, "deleted")], plan=ten_rupee_plan)
        services.usage_meter(until=start + 2 * HOUR)
        numbers.append(services.invoice_issue(project=project, actor="system:tests", at=at(issued)).number)
    # 31 March 18:30 UTC is 1 April 00:00 IST: the new financial year
    assert numbers == ["INV/2526/000001", "INV/2526/000002", "INV/2627/000001", "INV/2627/000002"]


class TestCreditNotes:
    @pytest.fixture
    def invoice(self, project, supplier, vm_factory, ten_rupee_plan):
        set_profile(project, "maharashtra")
        run_hours(project, ten_rupee_plan, vm_factory, hours=100)
        return services.invoice_issue(project=project, actor="system:tests", at=T0 + 200 * HOUR)

    def test_partial_then_full_credit(self, project, invoice):
        balance = Wallet.objects.get(project=project).balance
        note = services.credit_note_issue(
            invoice=invoice, amount="100", reason="SLA breach", actor="system:tests", at=LATER
        )
        assert note.number == "CN/2526/000001" and note.invoice == invoice
        assert (note.taxable_total, note.cgst_total, note.sgst_total, note.total) == (
            D("100.00"),
            D("9.00"),
            D("9.00"),
            D("118"),
        )
        assert (note.customer, note.supplier, note.place_of_supply) == (
            invoice.customer,
            invoice.supplier,
            invoice.place_of_supply,
        )
        assert Wallet.objects.get(project=project).balance == balance + D("118")
        with pytest.raises(Conflict, match="Only ₹900.00 .* is left to credit"):
            services.credit_note_issue(invoice=invoice, amount="900.01", reason="x", actor="system:tests", at=LATER)
        rest = services.credit_note_issue(invoice=invoice, reason="Account closed", actor="system:tests", at=LATER)
        assert rest.number == "CN/2526/000002" and rest.taxable_total == D("900.00") and rest.total == D("1062")
        with pytest.raises(Conflict, match="fully credited"):
            services.credit_note_issue(invoice=invoice, reason="again", actor="system:tests", at=LATER)
        assert AuditEvent.objects.filter(action="credit_note.issued").count() == 2
        assert CreditNote.objects.filter(invoice=invoice).count() == 2

    def test_a_reason_and_a_valid_rate_are_required(self, invoice):
        with pytest.raises(InvalidInput, match="Say why"):
            services.credit_note_issue(invoice=invoice, amount="1", reason="", actor="system:tests")
        with pytest.raises(InvalidInput, match="the invoice has 18.00%"):
            services.credit_note_issue(
                invoice=invoice, amount="1", gst_rate="5", reason="x", actor="system:tests", at=LATER
            )


def _project_with_usage(index: int, plan, image, hypervisor):
    user = UserFactory()
    project = user.projects.get()
    set_profile(project, "karnataka")
    make_vm(project, plan, image, hypervisor, f"vm-{index}", [(T0, "active"), (T0 + HOUR, "deleted")])
    return project


@pytest.mark.django_db(transaction=True)
def test_numbering_is_gapless_and_unique_under_concurrent_issue(supplier, plan, image, simulator):
    # Given 24 projects with usage, and one issue that fails after taking its number
    projects = [_project_with_usage(i, plan, image, simulator) for i in range(24)]
    services.usage_meter(until=T0 + 2 * HOUR)
    doomed = projects[5].pk
    real_record = services.invoices.audit.record

    def record(**kwargs):
        if kwargs.get("action") == "invoice.issued" and kwargs["project"].pk == doomed:
            raise RuntimeError("crash after the number was taken")
        return real_record(**kwargs)

    errors, barrier = [], threading.Barrier(6)

    def issue(batch):
        barrier.wait()
        try:
            for project in batch:
                try:
                    services.invoice_issue(project=project, actor="system:tests", at=T0 + 3 * HOUR)
                except RuntimeError:
                    errors.append(project.pk)
        finally:
            connections.close_all()

    # When six threads issue invoices at the same time
    with mock.patch.object(services.invoices.audit, "record", side_effect=record):
        threads = [threading.Thread(target=issue, args=(projects[i::6],)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

    # Then the numbers are 1..23 with no gap (the failed one gave its number back) and no duplicate
    assert errors == [doomed]
    sequences = sorted(Invoice.objects.values_list("sequence", flat=True))
    assert sequences == list(range(1, 24))
    numbers = list(Invoice.objects.values_list("number", flat=True))
    assert len(set(numbers)) == 23 and all(n.startswith("INV/2526/") for n in numbers)
    assert not Invoice.objects.filter(project_id=doomed).exists()
    assert UsageCharge.objects.filter(project_id=doomed, invoice__isnull=True).count() == 0  # rolled back: not charged
    assert ledger_problems() == []


def test_on_demand_invoice_then_the_monthly_run_invoices_the_rest(project, supplier, vm_factory, plan):
    set_profile(project, "karnataka")
    vm_factory([(T0, "active")])
    services.usage_meter(until=T0 + 5 * HOUR)
    first = services.invoice_issue(project=project, actor="system:tests", at=T0 + 5 * HOUR + timedelta(minutes=7))
    assert first.lines.get().quantity == D("5.0000")
    services.usage_meter(until=at("2025-05-31 19:30"))
    [second] = services.invoice_issue_monthly(now=at("2025-06-01 06:00"))
    # The rest of May: 1 May 15:00 IST to 1 June 00:00 IST = 729 h
    assert second.lines.get().quantity == D("729.0000") and second.period_start == first.period_end
