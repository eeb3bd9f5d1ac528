"""Razorpay top-ups against the local fake (tests/razorpay_fake.py), through
the official SDK pointed at it: orders, the browser callback after Checkout,
webhooks, and every bad input the issue lists. The wallet is credited exactly
once or not at all."""

import threading
from decimal import Decimal

import pytest
from django.db import connection
from rest_framework.test import APIClient

from audit.models import AuditEvent
from billing.models import LedgerEntry, Payment, PaymentSettings, ReceiptVoucher, Wallet
from billing.payments import selectors
from billing.payments.razorpay import gateway
from tests.fixtures.accounts import login_operator
from tests.fixtures.billing import set_profile
from tests.fixtures.factories import UserFactory
from tests.razorpay_fake import KEY_SECRET, sign

D = Decimal
WEBHOOK = "/api/v1/payments/razorpay/webhook/"


@pytest.fixture
def customer(project, payments_on):
    set_profile(project, "karnataka_unregistered")
    return project


@pytest.fixture
def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def order(api, project, amount="500.00"):
    response = api.post(f"/api/v1/projects/{project.slug}/payments/razorpay/orders/", {"amount": amount})
    assert response.status_code == 201, response.content
    return response.json()


def verify(api, project, paid):
    return api.post(f"/api/v1/projects/{project.slug}/payments/razorpay/verify/", paid)


def balance(project):
    return Wallet.objects.get(project=project).balance


def post_webhook(client, body, signature):
    return client.post(WEBHOOK, data=body, content_type="application/json", HTTP_X_RAZORPAY_SIGNATURE=signature)


def test_an_order_then_a_verified_capture_credits_once_with_a_receipt(api, customer, razorpay_fake):
    # Given an order created server-side for ₹500
    created = order(api, customer, "500")
    order_id = created["payment"]["gateway_order_id"]
    assert created["checkout"]["amount"] == 50000 and created["checkout"]["order_id"] == order_id
    assert created["checkout"]["key"].startswith("rzp_test_") and KEY_SECRET not in str(created)
    assert razorpay_fake.orders[order_id]["amount"] == 50000
    # When Checkout reports the payment and the server verifies it
    response = verify(api, customer, razorpay_fake.pay(order_id))
    # Then the wallet holds the money once, with a receipt voucher and the audit event
    assert response.status_code == 200 and response.json()["credited"] is True
    assert balance(customer) == D("500.00")
    payment = Payment.objects.get(gateway_order_id=order_id)
    assert payment.status == "credited" and payment.receipt.total == D("500.00")
    assert payment.receipt.payment_reference == payment.gateway_payment_id
    assert AuditEvent.objects.filter(action="payment.received", target_id=str(payment.pk)).count() == 1
    assert ("GET", f"/v1/payments/{payment.gateway_payment_id}") in razorpay_fake.requests  # capture checked
    # And the same report again changes nothing
    again = {
        "razorpay_order_id": order_id,
        "razorpay_payment_id": payment.gateway_payment_id,
        "razorpay_signature": sign(KEY_SECRET, f"{order_id}|{payment.gateway_payment_id}"),
    }
    assert verify(api, customer, again).status_code == 200
    assert balance(customer) == D("500.00") and ReceiptVoucher.objects.filter(project=customer).count() == 1


def test_a_forged_signature_is_refused_and_credits_nothing(api, customer, razorpay_fake):
    paid = razorpay_fake.pay(order(api, customer)["payment"]["gateway_order_id"])
    response = verify(api, customer, {**paid, "razorpay_signature": "0" * 64})
    assert response.status_code == 400 and "signature" in response.json()["error"]["message"]
    assert balance(customer) == 0
    assert AuditEvent.objects.get(action="payment.ignored").details["reason"] == "bad signature"


@pytest.mark.parametrize(
    "field, value",
    [
        ("razorpay_signature", "é" * 64),
        ("razorpay_signature", "zz"),
        ("razorpay_order_id", "x"),
        ("razorpay_payment_id", ""),
    ],
)
def test_checkout_values_not_in_razorpays_format_are_a_400(api, customer, razorpay_fake, field, value):
    paid = razorpay_fake.pay(order(api, customer)["payment"]["gateway_order_id"])
    response = verify(api, customer, {**paid, field: value})
    assert response.status_code == 400 and field in response.json()["error"]["fields"]
    assert balance(customer) == 0


def test_a_non_ascii_signature_does_not_verify(payments_on, razorpay_fake):
    assert gateway().payment_signature_valid(order_id="order_1", payment_id="pay_1", signature="é" * 64) is False


def test_an_unknown_order_is_a_404(api, customer, razorpay_fake):
    # An order made directly at Razorpay (not through us) with a validly signed payment
    foreign = gateway().order_create(amount=50000, currency="INR", receipt="elsewhere", notes={})
    response = verify(api, customer, razorpay_fake.pay(foreign.id))
    assert response.status_code == 404 and balance(customer) == 0


@pytest.mark.parametrize("change", [{"amount": 100}, {"currency": "USD"}])
def test_amount_or_currency_not_the_orders_is_refused_and_audited(api, customer, razorpay_fake, client, change):
    order_id = order(api, customer)["payment"]["gateway_order_id"]
    paid = razorpay_fake.pay(order_id, **change)
    response = verify(api, customer, paid)
    assert response.status_code == 409 and "nothing was credited" in response.json()["error"]["message"]
    # the webhook for the same payment is ignored too (answered 200 so Razorpay stops retrying), and audited
    body, signature = razorpay_fake.webhook("payment.captured", payment_id=paid["razorpay_payment_id"])
    assert post_webhook(client, body, signature).status_code == 200
    assert balance(customer) == 0 and not LedgerEntry.objects.filter(project=customer).exists()
    reasons = list(AuditEvent.objects.filter(action="payment.ignored").values_list("details__reason", flat=True))
    assert len(reasons) == 2 and all(("amount" in r) or ("currency" in r) for r in reasons)


def test_a_webhook_replayed_ten_times_credits_once(api, customer, razorpay_fake, client):
    paid = razorpay_fake.pay(order(api, customer, "750")["payment"]["gateway_order_id"])
    for event in ["payment.captured"] * 5 + ["order.paid"] * 5:
        body, signature = razorpay_fake.webhook(event, payment_id=paid["razorpay_payment_id"])
        assert post_webhook(client, body, signature).status_code == 200
    assert balance(customer) == D("750.00")
    assert LedgerEntry.objects.filter(project=customer, kind="topup").count() == 1
    assert AuditEvent.objects.filter(action="payment.received").count() == 1


def test_webhook_first_then_the_browser_callback(api, customer, razorpay_fake, client):
    paid = razorpay_fake.pay(order(api, customer)["payment"]["gateway_order_id"])
    body, signature = razorpay_fake.webhook("order.paid", payment_id=paid["razorpay_payment_id"])
    assert post_webhook(client, body, signature).json() == {"status": "credited"}
    response = verify(api, customer, paid)
    assert response.status_code == 200 and response.json()["credited"] is True
    assert balance(customer) == D("500.00")
    assert Payment.objects.get().credited_via == "webhook order.paid"


def test_browser_callback_first_then_the_webhook(api, customer, razorpay_fake, client):
    paid = razorpay_fake.pay(order(api, customer)["payment"]["gateway_order_id"])
    assert verify(api, customer, paid).status_code == 200
    body, signature = razorpay_fake.webhook("payment.captured", payment_id=paid["razorpay_payment_id"])
    assert post_webhook(client, body, signature).json() == {"status": "already"}
    assert balance(customer) == D("500.00") and Payment.objects.get().credited_via == "callback"


@pytest.mark.django_db(transaction=True)
def test_two_browser_callbacks_racing_credit_once(user, customer, razorpay_fake):
    # Given one paid order, and eight browsers (threads, each its own PostgreSQL connection) reporting it at once
    order_id = order(_api(user), customer)["payment"]["gateway_order_id"]
    paid = razorpay_fake.pay(order_id)
    barrier, answers = threading.Barrier(8), []

    def report():
        try:
            barrier.wait()
            answers.append(verify(_api(user), customer, paid).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=report) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then every answer is a success and the wallet got the money once
    assert answers == [200] * 8
    assert balance(customer) == D("500.00")
    assert LedgerEntry.objects.filter(project=customer, kind="topup").count() == 1


def _api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("-5", "positive"),
        ("abc", "rupees"),
        ("0", "positive"),
        ("10.005", "two decimals"),
        ("50", "smallest"),
        ("50000.01", "At most"),
    ],
)
def test_bad_amounts_are_refused_before_any_order(api, customer, razorpay_fake, amount, message):
    response = api.post(f"/api/v1/projects/{customer.slug}/payments/razorpay/orders/", {"amount": amount})
    assert response.status_code == 400 and message in response.json()["error"]["message"]
    assert razorpay_fake.orders == {} and not Payment.objects.exists()


def test_a_webhook_with_a_bad_signature_is_a_400_and_credits_nothing(api, customer, razorpay_fake, client):
    paid = razorpay_fake.pay(order(api, customer)["payment"]["gateway_order_id"])
    body, _ = razorpay_fake.webhook("payment.captured", payment_id=paid["razorpay_payment_id"])
    _, wrong = razorpay_fake.webhook("payment.captured", payment_id=paid["razorpay_payment_id"], secret="guess")
    assert post_webhook(client, body, wrong).status_code == 400
    assert post_webhook(client, body, "").status_code == 400
    assert post_webhook(client, b"not json", "x").status_code == 400
    assert post_webhook(client, body, "é" * 64).status_code == 400  # hmac.compare_digest raised TypeError: a 500
    assert client.get(WEBHOOK).status_code == 405
    assert balance(customer) == 0


def test_authorised_but_not_captured_waits_for_the_capture_webhook(api, customer, razorpay_fake, client):
    paid = razorpay_fake.pay(order(api, customer)["payment"]["gateway_order_id"], status="authorized")
    response = verify(api, customer, paid)
    assert response.status_code == 202 and response.json()["credited"] is False and balance(customer) == 0
    razorpay_fake.payments[paid["razorpay_payment_id"]]["status"] = "captured"
    body, signature = razorpay_fake.webhook("payment.captured", payment_id=paid["razorpay_payment_id"])
    assert post_webhook(client, body, signature).json() == {"status": "credited"}
    assert balance(customer) == D("500.00")


def test_a_webhook_for_an_order_we_never_made_is_ignored_and_audited(customer, razorpay_fake, client):
    foreign = gateway().order_create(amount=50000, currency="INR", receipt="elsewhere", notes={})
    paid = razorpay_fake.pay(foreign.id)
    body, signature = razorpay_fake.webhook("payment.captured", payment_id=paid["razorpay_payment_id"])
    assert post_webhook(client, body, signature).json() == {"status": "unknown order"}
    assert AuditEvent.objects.get(action="payment.ignored").details["reason"] == "unknown order"


def test_razorpay_down_is_a_503_and_writes_nothing(api, customer, razorpay_fake):
    razorpay_fake.stop()
    response = api.post(f"/api/v1/projects/{customer.slug}/payments/razorpay/orders/", {"amount": "500"})
    assert response.status_code == 503 and not Payment.objects.exists()


def test_paying_needs_a_billing_profile_and_the_member_role(api, project, payments_on, razorpay_fake, user):
    response = api.post(f"/api/v1/projects/{project.slug}/payments/razorpay/orders/", {"amount": "500"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "billing_profile_required"
    stranger = APIClient()
    stranger.force_authenticate(UserFactory())
    assert (
        stranger.post(f"/api/v1/projects/{project.slug}/payments/razorpay/orders/", {"amount": "5"}).status_code == 404
    )


def test_keys_are_encrypted_at_rest_and_never_shown_back(payments_on, client, db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT razorpay_keys FROM billing_paymentsettings")
        raw = cursor.fetchone()[0]
    assert KEY_SECRET not in raw and "rzp_test" not in raw
    assert selectors.razorpay_keys().key_secret == KEY_SECRET
    operator = UserFactory(is_staff=True, is_superuser=True)
    login_operator(client, operator)
    page = client.get(f"/admin/billing/paymentsettings/{PaymentSettings.objects.get().pk}/change/").content.decode()
    assert KEY_SECRET not in page and "key_secret: set" in page and "/api/v1/payments/razorpay/webhook/" in page
    event = AuditEvent.objects.get(action="billing.payment_settings_updated")
    assert KEY_SECRET not in str(event.details) and event.details["razorpay_keys"] == [
        "key_id",
        "key_secret",
        "webhook_secret",
    ]
