"""Refunds with their refund vouchers (CGST r.51), the sign-up trial credit
and its expiry, and operators crediting any project."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from pypdf import PdfReader

from accounts import services as account_services
from audit.models import AuditEvent
from billing import services
from billing.documents import pdf
from billing.models import LedgerEntry, Refund, RefundVoucher, TrialGrant, Wallet
from billing.payments import refunds, trial
from billing.payments.razorpay import razorpay_callback, razorpay_order_create
from billing.payments.settings import payment_settings_update
from controlplane.errors import Conflict, InvalidInput
from tests.fixtures.accounts import login_operator
from tests.fixtures.billing import fund, set_profile
from tests.fixtures.factories import UserFactory

D = Decimal
WEBHOOK = "/api/v1/payments/razorpay/webhook/"


def balance(project):
    return Wallet.objects.get(project=project).balance


@pytest.fixture
def paid(project, payments_on, razorpay_fake, user):
    """₹1180 paid through Razorpay (a customer in Karnataka: IGST)."""
    set_profile(project, "karnataka")
    payment = razorpay_order_create(project=project, amount="1180", actor=user)
    values = razorpay_fake.pay(payment.gateway_order_id)
    razorpay_callback(
        project=project,
        order_id=values["razorpay_order_id"],
        payment_id=values["razorpay_payment_id"],
        signature=values["razorpay_signature"],
        actor=user,
    )
    payment.refresh_from_db()
    return payment


def test_a_razorpay_refund_issues_a_refund_voucher_against_the_receipt(paid, razorpay_fake, client, user):
    # When the operator refunds ₹590 of the advance to the original payment
    refund = refunds.refund_issue(receipt=paid.receipt, amount="590", actor="operator:tests", reason="Unused balance")
    # Then Razorpay got the refund, the wallet is debited, and the voucher names the receipt with the tax refunded
    [gateway_refund] = razorpay_fake.refunds.values()
    assert gateway_refund["amount"] == 59000 and gateway_refund["payment_id"] == paid.gateway_payment_id
    assert refund.gateway_refund_id == gateway_refund["id"] and refund.status == "pending"
    assert balance(paid.project) == D("590.00")
    voucher = refund.voucher
    assert voucher.number.startswith("RFV/") and voucher.receipt_number == paid.receipt.number
    assert (voucher.taxable_total, voucher.igst_total, voucher.total) == (D("500.00"), D("90.00"), D("590.00"))
    assert voucher.place_of_supply == paid.receipt.place_of_supply == "29"
    text = "".join(page.extract_text() for page in PdfReader(_bytes_io(pdf.refund_voucher_pdf(voucher))).pages)
    assert "REFUND VOUCHER" in text and paid.receipt.number in text and "Unused balance" in text
    # And refund.processed from Razorpay marks it processed (a replay changes nothing)
    razorpay_fake.process_refund(gateway_refund["id"])
    body, signature = razorpay_fake.webhook("refund.processed", refund_id=gateway_refund["id"])
    for expected in ("processed", "already"):
        response = client.post(WEBHOOK, body, content_type="application/json", HTTP_X_RAZORPAY_SIGNATURE=signature)
        assert response.json() == {"status": expected}
    refund.refresh_from_db()
    assert refund.status == "processed" and AuditEvent.objects.filter(action="refund.processed").count() == 1
    # And the customer downloads the voucher
    client.force_login(user)
    assert client.get(f"/billing/{paid.project.slug}/refund-vouchers/{voucher.pk}/pdf/")["Content-Type"] == (
        "application/pdf"
    )


def _bytes_io(data):
    return io.BytesIO(data)


def test_refunds_never_exceed_the_receipt_or_the_balance(paid, razorpay_fake):
    receipt, other = paid.receipt, fund(paid.project, "500")
    with pytest.raises(Conflict, match="left to refund"):
        refunds.refund_issue(receipt=receipt, amount="1180.01", actor="operator:tests", reason="x")
    refunds.refund_issue(
        receipt=receipt, amount="1000", actor="operator:tests", reason="x", manual=True, reference="NEFT1"
    )
    with pytest.raises(Conflict, match="left to refund"):
        refunds.refund_issue(receipt=receipt, amount="181", actor="operator:tests", reason="x")
    services.wallet_adjust(project=paid.project, amount="-600", actor="operator:tests", reason="usage")
    with pytest.raises(Conflict, match="wallet holds"):
        refunds.refund_issue(
            receipt=other, amount="100", actor="operator:tests", reason="x", manual=True, reference="N"
        )
    with pytest.raises(InvalidInput):
        refunds.refund_issue(receipt=receipt, amount="10", actor="operator:tests", reason=" ")
    with pytest.raises(InvalidInput):
        refunds.refund_issue(receipt=receipt, amount="10", actor="operator:tests", reason="x", manual=True)
    with pytest.raises(Conflict, match="not paid through Razorpay"):
        refunds.refund_issue(receipt=other, amount="10", actor="operator:tests", reason="x")
    assert Refund.objects.count() == 1 and razorpay_fake.refunds == {}  # the manual one went nowhere
    # Razorpay refusing a refund writes nothing
    razorpay_fake.payments[paid.gateway_payment_id]["status"] = "failed"
    with pytest.raises(Conflict, match="refused"):
        refunds.refund_issue(receipt=receipt, amount="50", actor="operator:tests", reason="x")
    assert Refund.objects.count() == RefundVoucher.objects.count() == 1 and balance(paid.project) == D("80.00")


def test_a_manual_refund_from_the_wallet_admin(project, payments_on, client, db):
    set_profile(project, "maharashtra")
    receipt = fund(project, "1000")
    operator = UserFactory(is_staff=True, is_superuser=True)
    login_operator(client, operator)
    url = f"/admin/billing/wallet/{project.pk}/refund/"
    assert receipt.number in client.get(url).content.decode()
    form = {"receipt": receipt.pk, "amount": "118", "reason": "Closing", "manual": "on", "reference": "NEFT77"}
    assert client.post(url, form).status_code == 302
    voucher = RefundVoucher.objects.get()
    assert (voucher.cgst_total, voucher.sgst_total, voucher.total) == (D("9.00"), D("9.00"), D("118.00"))
    assert Refund.objects.get().reference == "NEFT77" and balance(project) == D("882.00")


def test_trial_credit_once_per_verified_email_and_its_expiry_is_a_ledger_entry(db, supplier):
    payment_settings_update(actor="operator:tests", trial_amount="300", trial_validity_days=14)
    # Given a new user whose address is verified (twice: a second confirmation changes nothing)
    user = account_services.user_create(email="New.User@Example.com", password="a-long-passphrase-1")
    project = user.projects.get()
    account_services.user_email_verified(user=user, email="new.user@example.com")
    grant = TrialGrant.objects.get()
    assert (grant.email, grant.amount, balance(project)) == ("new.user@example.com", D("300.00"), D("300.00"))
    assert grant.expires_at - grant.granted_at == timedelta(days=14)
    assert AuditEvent.objects.filter(action="trial.granted").count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        TrialGrant.objects.create(
            email=grant.email,
            project=project,
            amount=1,
            granted_at=grant.granted_at,
            expires_at=grant.expires_at,
            entry=LedgerEntry.objects.create(project=project, kind="trial", amount=1, balance_after=1, actor="x"),
        )
    # When ₹120 of usage is charged and the trial passes its date
    Wallet.objects.filter(pk=project.pk).update(balance=D("180.00"))
    LedgerEntry.objects.create(project=project, kind="usage", amount=D("-120"), balance_after=D("180"), actor="x")
    assert trial.trial_expire_due(now=grant.expires_at - timedelta(seconds=1)) == 0
    assert trial.trial_expire_due(now=grant.expires_at) == 1
    assert trial.trial_expire_due(now=grant.expires_at + timedelta(days=1)) == 0  # once
    # Then the unused ₹180 is taken back by an entry; nothing is deleted
    grant.refresh_from_db()
    assert grant.expired_amount == D("180.00") and grant.expiry_entry.amount == D("-180.00")
    assert balance(project) == 0 and LedgerEntry.objects.filter(project=project).count() == 3


def test_no_trial_when_it_is_off(db, supplier):
    user = account_services.user_create(email="nobody@example.com", password="a-long-passphrase-1")
    assert not TrialGrant.objects.exists() and balance(user.projects.get()) == 0  # the wallet exists from creation


def test_every_project_has_a_wallet_and_operators_credit_any_from_the_projects_list(client, db, supplier):
    owner = UserFactory()
    team = account_services.project_create(name="Team X", owner=owner)
    assert Wallet.objects.filter(project=team).exists()
    Wallet.objects.filter(project=team).delete()  # an older project without one
    operator = UserFactory(is_staff=True, is_superuser=True)
    login_operator(client, operator)
    listing = client.get("/admin/accounts/project/").content.decode()
    assert f"/admin/billing/wallet/{team.pk}/topup/" in listing
    # top-up needs a reason or a reference; then it opens the wallet and credits with a receipt
    url = f"/admin/billing/wallet/{team.pk}/topup/"
    assert "say why" in client.post(url, {"amount": "100"}).content.decode()
    assert client.post(url, {"amount": "100", "reason": "Paid in cash at the office"}).status_code == 302
    assert balance(team) == D("100.00")
    assert AuditEvent.objects.get(action="wallet.topup").details["reason"] == "Paid in cash at the office"
    # bulk adjustment with a reason from the projects list
    data = {"action": "adjust", "_selected_action": [team.pk, owner.projects.get(kind="personal").pk]}
    assert "reason" in client.post("/admin/accounts/project/", data).content.decode().lower()
    client.post("/admin/accounts/project/", {**data, "apply": "1", "amount": "25", "reason": "Launch credit"})
    assert balance(team) == D("125.00") and balance(owner.projects.get(kind="personal")) == D("25.00")
    assert AuditEvent.objects.filter(action="wallet.adjusted").count() == 2


def test_refund_vouchers_need_their_own_prefix(supplier):
    with pytest.raises(InvalidInput) as refused:
        payment_settings_update(actor="operator:tests", refund_voucher_prefix="RV")
    assert "own prefix" in refused.value.fields["refund_voucher_prefix"]
