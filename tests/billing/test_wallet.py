"""The wallet ledger: top-ups with receipts, adjustments, refunds, low-balance
emails, the pre-check, and append-only storage."""

from decimal import Decimal

import pytest
from django.core import mail
from django.db import IntegrityError, connection, transaction

from audit.models import AuditEvent
from billing import selectors, services
from billing.models import LedgerEntry, Wallet
from controlplane.errors import Conflict, InvalidInput, PaymentRequired
from tests.fixtures.billing import fund, set_profile

D = Decimal


def test_a_top_up_credits_the_wallet_and_issues_a_receipt_voucher(project, supplier):
    set_profile(project, "karnataka")
    receipt = services.wallet_topup(
        project=project, amount="1180.00", actor="system:tests", reference="UTR123", payment_mode="NEFT"
    )
    assert receipt.number.startswith("RV/") and receipt.number.endswith("/000001")
    # The advance includes GST at the supplier's rate, split by the place of supply.
    assert (receipt.taxable_total, receipt.igst_total, receipt.cgst_total, receipt.total) == (
        D("1000.00"),
        D("180.00"),
        D("0.00"),
        D("1180.00"),
    )
    assert receipt.place_of_supply == "29" and receipt.customer["gstin"] == project.billing_profile.gstin
    assert Wallet.objects.get(project=project).balance == D("1180.00")
    event = AuditEvent.objects.get(action="wallet.topup")
    assert event.details["receipt"] == receipt.number and event.project_id == project.pk


def test_the_same_payment_reference_is_recorded_once(project, supplier):
    services.wallet_topup(project=project, amount="100", actor="system:tests", reference="UTR9")
    with pytest.raises(Conflict, match="UTR9 is already recorded"):
        services.wallet_topup(project=project, amount="100", actor="system:tests", reference="UTR9")
    assert Wallet.objects.get(project=project).balance == D("100.00")


@pytest.mark.parametrize("amount", ["0", "-5", "1.005", "abc", "1e12"])
def test_bad_top_up_amounts_are_refused(project, supplier, amount):
    with pytest.raises(InvalidInput):
        services.wallet_topup(project=project, amount=amount, actor="system:tests")


def test_adjustments_need_a_reason_and_are_audited(project, supplier, user):
    with pytest.raises(InvalidInput, match="Say why"):
        services.wallet_adjust(project=project, amount="10", actor=user, reason=" ")
    entry = services.wallet_adjust(project=project, amount="-25.50", actor=user, reason="Goodwill reversal")
    assert (entry.kind, entry.amount, entry.balance_after, entry.actor_user) == (
        "adjustment",
        D("-25.50"),
        D("-25.50"),
        user,
    )
    assert AuditEvent.objects.filter(action="wallet.adjusted", actor=user.email).count() == 1


def test_a_refund_cannot_exceed_the_balance(project, supplier):
    fund(project, "50")
    with pytest.raises(Conflict, match="cannot exceed"):
        services.wallet_refund(project=project, amount="50.01", actor="system:tests", reason="Closing account")
    services.wallet_refund(project=project, amount="50", actor="system:tests", reason="Closing account")
    assert Wallet.objects.get(project=project).balance == D("0.00")
    assert AuditEvent.objects.filter(action="wallet.debited", details__kind="refund").count() == 1


def test_the_cached_balance_is_the_sum_of_the_entries(project, supplier):
    fund(project, "300")
    services.wallet_adjust(project=project, amount="-120.25", actor="system:tests", reason="x")
    services.wallet_refund(project=project, amount="10", actor="system:tests", reason="y")
    total = sum(LedgerEntry.objects.filter(project=project).values_list("amount", flat=True))
    assert Wallet.objects.get(project=project).balance == total == D("169.75")
    assert selectors.ledger_problems() == []
    Wallet.objects.filter(project=project).update(balance=D("1"))
    assert selectors.ledger_problems() == [f"project {project.pk}: balance 1.00 but entries sum to 169.75"]


def test_ledger_entries_cannot_be_updated_or_deleted_in_the_database(project, supplier):
    entry = fund(project, "10").entry
    for sql in (
        "UPDATE billing_ledgerentry SET amount = 1000 WHERE id = %s",
        "DELETE FROM billing_ledgerentry WHERE id = %s",
    ):
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [entry.pk])
    assert LedgerEntry.objects.get(pk=entry.pk).amount == D("10.00")


def test_low_balance_emails_once_per_threshold_and_rearm_after_a_top_up(
    project, supplier, user, django_capture_on_commit_callbacks
):
    services.billing_settings_update(actor="system:tests", low_balance_thresholds="500, 100")

    def adjust(amount):
        with django_capture_on_commit_callbacks(execute=True):
            services.wallet_adjust(project=project, amount=amount, actor="system:tests", reason="test")
        return [m.subject for m in mail.outbox[-1:]] if mail.outbox else []

    fund(project, "600")
    mail.outbox.clear()
    adjust("-150")  # 450: below 500
    adjust("-10")  # 440: nothing new
    adjust("-400")  # 40: below 100
    adjust("-50")  # -10: below zero
    subjects = [m.subject for m in mail.outbox]
    assert subjects == [
        f"[{project.name}] Wallet balance below ₹500.00",
        f"[{project.name}] Wallet balance below ₹100.00",
        f"[{project.name}] Wallet balance below zero",
    ]
    assert mail.outbox[0].to == [user.email]
    assert "suspended" in mail.outbox[2].body and "72 hours" in mail.outbox[2].body
    # A top-up re-arms the thresholds
    with django_capture_on_commit_callbacks(execute=True):
        fund(project, "1000")  # 990
    adjust("-600")  # 390: below 500 again
    assert mail.outbox[-1].subject == f"[{project.name}] Wallet balance below ₹500.00" and len(mail.outbox) == 4
    assert Wallet.objects.get(project=project).negative_since is None


class TestCanAfford:
    def test_refused_with_the_amount_needed(self, project, plan):
        set_profile(project, "karnataka")
        fund(project, "40.00")
        # 24 h x 1.50 = 36.00 + IGST 6.48 = 42.48
        with pytest.raises(PaymentRequired) as caught:
            services.wallet_check_can_afford(project=project, plan=plan)
        message = caught.value.message
        assert "needs ₹42.48 for its first 24 hours (₹1.77/hour with GST)" in message
        assert "holds ₹40.00. Top up at least ₹2.48." in message

    def test_enough_balance_passes(self, project, plan):
        fund(project, "42.48")
        services.wallet_check_can_afford(project=project, plan=plan)
        services.wallet_check_can_afford(project=project, plan=plan, hours=1)
        with pytest.raises(PaymentRequired):
            services.wallet_check_can_afford(project=project, plan=plan, hours=25)

    def test_a_suspended_project_is_refused(self, project, plan):
        fund(project, "1000")
        project.suspended_at, project.suspended_reason = project.created_at, "Wallet below zero"
        with pytest.raises(PaymentRequired, match="is suspended \\(Wallet below zero\\)"):
            services.wallet_check_can_afford(project=project, plan=plan)


def test_plan_price_with_gst_for_the_wizard(project, plan):
    set_profile(project, "maharashtra")
    price = selectors.plan_price_for_project(plan=plan, project=project)
    assert (price.running.taxable, price.running.cgst, price.running.sgst, price.running.total) == (
        D("1.50"),
        D("0.14"),
        D("0.14"),
        D("1.78"),
    )
    # A month is priced as one line (730 h x 1.50 = 1095.00), not 730 rounded hours.
    assert (price.monthly.taxable, price.monthly.tax, price.monthly.total) == (D("1095.00"), D("197.10"), D("1292.10"))
    assert price.tax_label == "CGST+SGST"


def test_management_commands(project, supplier):
    from io import StringIO

    from django.core.management import call_command

    fund(project, "10")
    out = StringIO()
    call_command("billing_verify_ledger", stdout=out)
    assert "matches" in out.getvalue()
    call_command("billing_seed_demo", email=[project.memberships.get().user.email], stdout=out)
    call_command("billing_seed_demo", email=[project.memberships.get().user.email], stdout=out)
    assert Wallet.objects.get(project=project).balance == D("5010.00")
