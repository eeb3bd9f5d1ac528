"""The monthly invoice run's statements per invoice (issue 25): a budget that fails when a change
adds a query to each project's transaction, and the run's results when the hourly job has
charged everything before it (the projects are then not charged again in their transaction)."""

from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit.selectors import chain_verify
from billing import services
from billing.choices import DocumentKind
from billing.models import DocumentSeries, Invoice, LedgerEntry, UsageCharge
from billing.selectors import ledger_problems
from billing.services.documents import numbered
from compute.choices import SnapshotState
from compute.models import Snapshot
from controlplane.errors import Conflict
from tests.fixtures.billing import HOUR, at, fund, set_profile
from tests.fixtures.factories import PlanFactory, UserFactory

D = Decimal
GIB = 2**30
T0 = at("2025-04-30 18:30")  # 1 May 00:00 IST
RUN = at("2025-06-01 02:00")
# BEGIN, wallet lock, open charges, usage lines, the number (one UPDATE), invoice, lines, charges
# linked, settlement entry and wallet, audit (chain lock, head, event), COMMIT (the old code: 31).
PER_INVOICE = 14


def invoice_transactions(queries: list[dict]) -> list[list[str]]:
    """The statements of each project's transaction of the run that wrote an invoice (inside the
    test's transaction a project's transaction is a savepoint: its SAVEPOINT and RELEASE stand
    for BEGIN and COMMIT)."""
    transactions, current, name = [], None, None
    for sql in (q["sql"] for q in queries):
        if current is None and sql.startswith("SAVEPOINT "):
            current, name = [], sql.split(" ", 1)[1]
        if current is not None:
            current.append(sql)
        if current is not None and sql.endswith(f"SAVEPOINT {name}") and not sql.startswith("SAVEPOINT"):
            if any(s.startswith('INSERT INTO "billing_invoice" ') for s in current):
                transactions.append(current)
            current = None
    return transactions


def charge_fleet(user, vm_factory, *, snapshots: bool):
    """Three projects with May usage (with ``snapshots``, one also with snapshot storage),
    metered and charged by the hourly jobs before the monthly run."""
    plan = PlanFactory(price_hourly_running=D("1.2345"))
    projects = [user.projects.get(), *(UserFactory().projects.get() for _ in range(2))]
    for n, project in enumerate(projects):
        set_profile(project, ["karnataka", "maharashtra", "sez"][n])
        fund(project, "5000")
        for _ in range(n + 1):
            vm_factory([(T0, "active"), (T0 + (30 + n) * HOUR, "deleted")], plan=plan, project=project)
    services.usage_meter(until=T0 + 40 * HOUR)
    services.usage_charge_pending()
    if not snapshots:
        return projects
    services.billing_settings_update(actor="system:tests", snapshot_price_per_gib_hour=D("0.0100"))
    snapshot = Snapshot.objects.create(
        vm=projects[2].vms.first(), name="s", backend_ref="cp-s", size_bytes=2 * GIB, state=SnapshotState.DELETED,
        deleted_at=T0 + 10 * HOUR,
    )  # fmt: skip
    Snapshot.objects.filter(pk=snapshot.pk).update(created_at=T0)
    assert services.snapshot_storage_charge_pending(now=RUN) == 1
    return projects


def test_each_invoice_of_the_monthly_run_is_a_fixed_number_of_statements(supplier, user, vm_factory):
    charge_fleet(user, vm_factory, snapshots=False)

    # When the monthly run invoices May, the hourly job having charged everything
    with CaptureQueriesContext(connection) as ctx:
        invoices = services.invoice_issue_monthly(now=RUN)

    # Then one invoice per project, each written in one transaction of at most PER_INVOICE statements
    assert len(invoices) == 3
    transactions = invoice_transactions(ctx.captured_queries)
    assert len(transactions) == 3
    first, *others = [len(t) for t in transactions]
    assert first <= PER_INVOICE + 7  # the year's first invoice also creates the series
    assert max(others) <= PER_INVOICE, "\n\n".join("\n".join(t) for t in transactions)
    # Settings are read once for the run, not in each project's transaction
    assert not any("billing_billingsettings" in s for t in transactions for s in t)


def test_the_monthly_run_after_the_hourly_job_keeps_every_invariant(supplier, user, vm_factory):
    projects = charge_fleet(user, vm_factory, snapshots=True)

    invoices = services.invoice_issue_monthly(now=RUN)

    # Gapless numbers, every charge invoiced once, totals = sum of lines, debits = totals
    assert sorted(i.sequence for i in invoices) == [1, 2, 3]
    assert not UsageCharge.objects.filter(invoice__isnull=True).exists()
    for invoice in Invoice.objects.all():
        lines = list(invoice.lines.order_by("position"))
        assert [line.position for line in lines] == list(range(1, len(lines) + 1))
        assert invoice.taxable_total == sum(line.taxable for line in lines)
        assert invoice.tax_total == sum(line.cgst + line.sgst + line.igst for line in lines)
        assert invoice.total == invoice.taxable_total + invoice.tax_total + invoice.round_off
        debits = LedgerEntry.objects.filter(project=invoice.project, kind="usage").values_list("amount", flat=True)
        assert -sum(debits) == invoice.total
    snapshot_line = Invoice.objects.get(project=projects[2]).lines.get(unit="GiB-h")
    assert (snapshot_line.quantity, snapshot_line.taxable) == (D("20.0000"), D("0.20"))
    assert ledger_problems() == []
    assert chain_verify().ok


def test_a_number_is_one_statement_and_a_refused_one_changes_nothing(supplier, db):
    with transaction.atomic():
        numbered(kind=DocumentKind.INVOICE, prefix="INV", at=RUN, actor="system:tests")  # creates the series
        with CaptureQueriesContext(connection) as ctx:
            second = numbered(kind=DocumentKind.INVOICE, prefix="INV", at=RUN, actor="system:tests")
    assert (second["number"], second["sequence"]) == ("INV/2526/000002", 2)
    assert len(ctx.captured_queries) == 1 and ctx.captured_queries[0]["sql"].startswith("UPDATE")
    assert DocumentSeries.objects.get(prefix="INV").last_number == 2

    # A prefix of another kind's series is refused, and that series keeps its number
    with pytest.raises(Conflict, match="already used for Tax invoice numbers"), transaction.atomic():
        numbered(kind=DocumentKind.CREDIT_NOTE, prefix="INV", at=RUN, actor="system:tests")
    assert DocumentSeries.objects.get(prefix="INV").last_number == 2


def test_an_invoice_on_demand_has_the_lines_of_every_kind_its_charges_hold(supplier, user, vm_factory):
    projects = charge_fleet(user, vm_factory, snapshots=True)
    invoice = services.invoice_issue(project=projects[2], actor="system:tests", at=RUN)
    assert [line.unit for line in invoice.lines.order_by("position")] == ["HRS", "HRS", "HRS", "GiB-h"]
    assert invoice.taxable_total == sum(line.taxable for line in invoice.lines.all())
