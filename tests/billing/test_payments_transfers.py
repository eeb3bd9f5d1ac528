"""Bank transfer / UPI without a gateway: the customer reports a UTR, the
operator confirms (one, bulk, bank-statement CSV) or rejects; pending until then."""

from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.forms.models import model_to_dict
from rest_framework.test import APIClient

from audit.models import AuditEvent
from billing import services
from billing.models import LedgerEntry, Payment, Wallet
from billing.payments import selectors, transfers
from compute.models import Plan
from controlplane.errors import Conflict, InvalidInput
from tests.fixtures.accounts import login_operator
from tests.fixtures.billing import at, set_profile
from tests.fixtures.factories import UserFactory

D = Decimal


@pytest.fixture
def customer(project, payments_on):
    set_profile(project, "karnataka_unregistered")
    return project


@pytest.fixture
def operator(client, db):
    admin = UserFactory(is_staff=True, is_superuser=True)
    login_operator(client, admin)
    return admin


def balance(project):
    return Wallet.objects.get(project=project).balance


def test_the_wallet_page_shows_bank_details_a_upi_qr_and_the_reference(customer, user, client):
    client.force_login(user)
    html = client.get(f"/billing/{customer.slug}/?amount=1500").content.decode()
    reference = selectors.transfer_reference(customer)
    assert "50200012345678" in html and "HDFC0000123" in html and reference in html
    assert "<svg" in html and "UPI payment QR code" in html
    uri = selectors.upi_uri(settings=selectors.payment_settings_get(), project=customer, amount=D("1500"))
    query = parse_qs(urlparse(uri).query)
    assert uri.startswith("upi://pay?") and query["pa"] == ["cloudhost@hdfcbank"] and query["am"] == ["1500.00"]
    assert query["cu"] == ["INR"] and reference in query["tn"][0]


def test_a_reported_transfer_is_pending_until_an_operator_confirms_it(customer, user, client, operator):
    # Given the customer reports a transfer in the portal
    client.force_login(user)
    response = client.post(f"/billing/{customer.slug}/transfer/", {"amount": "2000", "utr": "hdfc r5 2026 1204 0001"})
    assert response.status_code == 302
    payment = Payment.objects.get()
    assert (payment.status, payment.utr, balance(customer)) == ("pending", "HDFCR5202612040001", D("0.00"))
    assert "HDFCR5202612040001" in client.get(f"/billing/{customer.slug}/").content.decode()
    # When the operator confirms it (bulk action on the payments list), twice
    login_operator(client, operator)
    for _ in range(2):
        client.post("/admin/billing/payment/", {"action": "confirm_transfers", "_selected_action": [payment.pk]})
    # Then it is credited once, with a receipt voucher
    payment.refresh_from_db()
    assert payment.status == "credited" and payment.receipt.payment_reference == "UTR HDFCR5202612040001"
    assert balance(customer) == D("2000.00") and LedgerEntry.objects.filter(kind="topup").count() == 1
    assert AuditEvent.objects.filter(action="payment.received").count() == 1


def test_the_same_utr_twice_or_a_bad_one_is_refused(customer, user):
    transfers.transfer_report(project=customer, amount="500", utr="UTR123456", actor=user)
    with pytest.raises(Conflict, match="already been reported"):
        transfers.transfer_report(project=customer, amount="500", utr="utr123456", actor=user)
    for utr in ("", "12", "UTR 12;DROP", "X" * 41):
        with pytest.raises(InvalidInput):
            transfers.transfer_report(project=customer, amount="500", utr=utr, actor=user)
    for amount in ("-1", "x", "99", "50000.01"):
        with pytest.raises(InvalidInput):
            transfers.transfer_report(project=customer, amount=amount, utr="UTR999999", actor=user)
    assert Payment.objects.count() == 1


def test_a_rejected_transfer_needs_a_reason_and_is_never_credited(customer, user, operator):
    payment = transfers.transfer_report(project=customer, amount="500", utr="UTR7654321", actor=user)
    with pytest.raises(InvalidInput):
        transfers.transfer_reject(payment=payment, actor=operator, reason=" ")
    transfers.transfer_reject(payment=payment, actor=operator, reason="Nothing with this UTR in the bank")
    with pytest.raises(Conflict):
        transfers.transfer_confirm(payment=payment, actor=operator)
    assert balance(customer) == 0 and AuditEvent.objects.filter(action="payment.transfer_rejected").exists()


def test_a_bank_statement_csv_confirms_what_matches_and_lists_the_rest(customer, user, client, operator):
    by_utr = transfers.transfer_report(project=customer, amount="1000", utr="N123456789012", actor=user)
    by_reference = transfers.transfer_report(project=customer, amount="2500.50", utr="UPI998877", actor=user)
    wrong_amount = transfers.transfer_report(project=customer, amount="300", utr="IMPS4444444", actor=user)
    reference = selectors.transfer_reference(customer)
    statement = (
        "Date,Narration,Chq/Ref No,Withdrawal,Deposit,Balance\n"
        '04/12/2026,NEFT-N123456789012-ACME,N123456789012,,"1,000.00",10000\n'
        f"04/12/2026,UPI/{reference}/asha@okbank,4711,,2500.50,12500.50\n"
        "04/12/2026,IMPS-IMPS4444444,IMPS4444444,,350.00,12850.50\n"
        "04/12/2026,Card charges,,200.00,,12650.50\n"
    )
    response = client.post(
        "/admin/billing/payment/statement/",
        {"statement": _upload(statement)},
    )
    html = response.content.decode()
    assert response.status_code == 200 and "Credited now: 2" in html and "Not matched: 1" in html
    statuses = {p.pk: p.status for p in Payment.objects.all()}
    assert statuses == {by_utr.pk: "credited", by_reference.pk: "credited", wrong_amount.pk: "pending"}
    assert balance(customer) == D("3500.50")
    # Importing the same statement again credits nothing more
    again = client.post("/admin/billing/payment/statement/", {"statement": _upload(statement)}).content.decode()
    assert "Credited now: 0" in again and balance(customer) == D("3500.50")
    bad = client.post("/admin/billing/payment/statement/", {"statement": _upload("just,some\n1,2\n")})
    assert bad.status_code == 200 and "needs a header" in bad.content.decode()


def _upload(text):
    return SimpleUploadedFile("statement.csv", text.encode(), content_type="text/csv")


def test_the_api_reports_a_transfer_and_lists_payments(customer, user):
    api = APIClient()
    api.force_authenticate(user)
    url = f"/api/v1/projects/{customer.slug}/payments/"
    response = api.post(f"{url}transfers/", {"amount": "750.00", "utr": "UPI123456789"})
    assert response.status_code == 201 and response.json()["status"] == "pending"
    assert api.post(f"{url}transfers/", {"amount": "750.00", "utr": "UPI123456789"}).status_code == 409
    assert api.post(f"{url}transfers/", {"amount": "-1", "utr": "UPI999999999"}).status_code == 400
    assert [p["utr"] for p in api.get(url).json()["results"]] == ["UPI123456789"]


def test_operators_edit_payment_settings_and_blank_keys_keep_the_stored_ones(payments_on, client, operator):
    url = f"/admin/billing/paymentsettings/{payments_on.pk}/change/"
    form = {
        name: ("on" if value is True else "" if value is False else value)
        for name, value in model_to_dict(payments_on).items()
        if name not in ("id", "razorpay_keys") and value is not None
    }
    response = client.post(url, {**form, "key_secret": "rotated-secret", "trial_amount": "250"})
    assert response.status_code == 302, response.content.decode()[:2000]
    keys = selectors.razorpay_keys()
    assert keys.key_secret == "rotated-secret" and keys.webhook_secret == "webhook-secret-of-the-tests"
    assert selectors.payment_settings_get().trial_amount == D("250.00")
    bad = client.post(url, {**form, "bank_ifsc": "hdfc123", "min_payment": "900", "max_payment": "100"})
    assert bad.status_code == 200 and "IFSC" in bad.content.decode()


def test_the_wallet_page_says_what_the_machines_cost_and_how_long_the_balance_lasts(
    customer, user, client, vm_factory, plan
):
    # Given ₹1,000 and one running and one stopped VM of a plan at ₹2.00 / ₹0.50 an hour (+18% GST)
    Plan.objects.filter(pk=plan.pk).update(price_hourly_running=D("2.00"), price_hourly_stopped=D("0.50"))
    vm_factory([(at("2026-12-01 10:00"), "active")], name="up")
    vm_factory([(at("2026-12-01 10:00"), "stopped")], name="down")
    services.wallet_topup(project=customer, amount="1000", actor="operator:tests", reason="cash")
    burn = selectors.burn_rate(project=customer)
    # Then 2.36 + 0.59 = ₹2.95 an hour, 730 hours a month, and 1000 / (2.95 x 24) = 14.1 days
    assert (burn.running, burn.stopped, burn.hourly, burn.monthly) == (1, 1, D("2.95"), D("2153.50"))
    assert burn.days_left == D("14.1")
    client.force_login(user)
    html = client.get(f"/billing/{customer.slug}/").content.decode()
    assert "₹2.95/hour" in html and "14.1 days" in html and "72 hours below zero" in html
