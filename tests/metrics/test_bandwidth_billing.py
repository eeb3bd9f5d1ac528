"""Transfer over the plan's allowance: metered per closed month, debited, invoiced on its own line."""

from decimal import Decimal

import pytest
from django.utils import timezone

from billing import services
from billing.models import LedgerEntry, TransferRecord, UsageCharge
from compute.models import VMTransfer
from tests.fixtures.billing import HOUR, at, set_profile
from tests.fixtures.factories import PlanFactory

D = Decimal
MAY = at("2025-05-01 00:00").date()
T0 = at("2025-04-30 18:30")  # 1 May 00:00 IST


@pytest.fixture
def transfer_plan(db):
    return PlanFactory(price_hourly_running=D("1.0000"), included_transfer_gb=100)


def may_vm(vm_factory, plan, transfer_bytes):
    vm = vm_factory([(T0, "active"), (T0 + 10 * HOUR, "deleted")], plan=plan)
    VMTransfer.objects.create(
        vm=vm,
        month=MAY,
        rx_bytes=transfer_bytes // 3,
        tx_bytes=transfer_bytes - transfer_bytes // 3,
        updated_at=timezone.now(),
    )
    return vm


def test_over_use_appears_on_the_invoice_with_its_sac(project, supplier, vm_factory, transfer_plan):
    # Given 2.00 per GB over the allowance, a plan with 100 GB, and a VM that moved 150.5 GB in May
    services.billing_settings_update(actor="system:tests", transfer_price_per_gb=D("2.00"))
    set_profile(project, "karnataka")
    vm = may_vm(vm_factory, transfer_plan, 150_500_000_000)
    may_vm(vm_factory, transfer_plan, 99 * 10**9)  # under the allowance: nothing

    # When the monthly run invoices May on 1 June
    [invoice] = services.invoice_issue_monthly(now=at("2025-06-01 02:00"))

    # Then the over-use is its own line: 50.5 GB x 2.00 = 101.00 + IGST 18.18
    *hours, transfer = invoice.lines.order_by("position")
    assert [line.unit for line in hours] == ["HRS", "HRS"]  # the two VMs' hours come first
    assert (transfer.sac_code, transfer.unit, transfer.quantity, transfer.rate) == (
        "998315",
        "GB",
        D("50.5000"),
        D("2.0000"),
    )
    assert (transfer.taxable, transfer.igst, transfer.vm_id) == (D("101.00"), D("18.18"), vm.pk)
    assert "over the" in transfer.description and "100 GB, May 2025" in transfer.description
    assert invoice.taxable_total == sum(line.taxable for line in hours) + D("101.00")
    # And the wallet was debited for it exactly once, even when the job runs again
    assert services.transfer_charge_pending(now=at("2025-06-02 00:00")) == 0
    assert TransferRecord.objects.get().charge.invoice == invoice
    debits = LedgerEntry.objects.filter(project=project, description__startswith="Data transfer")
    assert [e.amount for e in debits] == [D("-119.18")]


def test_nothing_is_charged_at_price_zero_or_before_the_month_closed(project, supplier, vm_factory, transfer_plan):
    vm = may_vm(vm_factory, transfer_plan, 500 * 10**9)
    assert services.transfer_charge_pending(now=at("2025-06-01 02:00")) == 0  # price 0: the default
    services.billing_settings_update(actor="system:tests", transfer_price_per_gb=D("1.00"))
    assert services.transfer_charge_pending(now=at("2025-05-31 18:35")) == 0  # May ended 5 minutes ago
    assert services.transfer_charge_pending(now=at("2025-05-31 18:45")) == 1
    charge = UsageCharge.objects.get(transfer_records__vm=vm)
    assert (charge.taxable, charge.period) == (D("400.00"), MAY)


def test_the_usage_page_shows_transfer_and_the_projection(client, user, project, vm_factory, transfer_plan):
    services.billing_settings_update(actor="system:tests", transfer_price_per_gb=D("2.00"))
    vm = vm_factory([(timezone.now(), "active")], plan=transfer_plan)
    VMTransfer.objects.create(
        vm=vm, month=timezone.localdate().replace(day=1), rx_bytes=60 * 10**9, tx_bytes=0, updated_at=timezone.now()
    )
    client.force_login(user)
    html = client.get(f"/billing/{project.slug}/usage/").content.decode()
    assert "Data transfer" in html and "60.000 GB" in html and "100 GB" in html
    assert "Projected by month end" in html and "per GB before GST" in html
