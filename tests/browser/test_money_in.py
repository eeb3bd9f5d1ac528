"""A self-service customer's money, end to end in a real browser: sign up and
verify (the trial credit arrives), request a VM paid by the trial, a real
Celery worker builds it (active), fill the billing profile, top up through the
local Razorpay fake, and download the receipt voucher.

Razorpay Checkout's script cannot load here (no internet; the test aborts
the request to make that immediate): the page says so, and the test then does
what Checkout's handler does with a payment the fake server made (order id,
payment id, signature) by submitting the page's hand-off form. Everything
after that is the product's: server-side signature check with the SDK, a
fetch of the payment from the (fake) gateway, the credit and the receipt."""

import re
from decimal import Decimal

import pytest
from django.core import mail
from playwright.sync_api import expect

from billing.models import Wallet
from billing.payments.settings import payment_settings_update
from compute.models import ImageReference
from tests.fixtures.factories import ImageFactory, PlanFactory

pytestmark = [pytest.mark.worker, pytest.mark.browser]

EMAIL = "ravi@example.com"
PASSWORD = "a-long-and-new-passphrase"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHv4ZmWk8J0vZ2cT1fX4sWw0b6lX1e9l0J0b5j4Yk2cT ravi@laptop"


@pytest.fixture
def catalogue(simulator):
    plan = PlanFactory(name="bronze", requires_approval=False)
    image = ImageFactory(name="debian-12", os_name="Debian 12 (bookworm)")
    ImageReference.objects.create(image=image, hypervisor=simulator, ref="tmpl-debian-12")
    return plan, image


def test_sign_up_trial_vm_top_up_receipt(new_page, live_server, live_worker, catalogue, payments_on, razorpay_fake):
    plan, image = catalogue
    payment_settings_update(actor="system:tests", trial_amount="500", trial_validity_days=30)
    page = new_page()
    page.route("https://checkout.razorpay.com/**", lambda route: route.abort())

    # Sign up and verify the address: the trial credit arrives with the verification
    page.goto("/accounts/signup/")
    page.get_by_label("Email").fill(EMAIL)
    page.locator("#id_password1").fill(PASSWORD)
    page.locator("#id_password2").fill(PASSWORD)
    page.get_by_role("button", name="Sign Up").click()
    [message] = [m for m in mail.outbox if EMAIL in m.to]
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", message.body).group(0)
    page.goto(link.replace("http://testserver", live_server.url))
    page.get_by_role("button", name="Confirm").click()
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    page.get_by_role("link", name="Billing").click()
    expect(page.locator("#wallet-balance")).to_have_text("₹500.00")
    expect(page.locator("#trial-notice")).to_contain_text("trial credit of ₹500.00")
    expect(page.get_by_role("heading", name="What happens when the balance runs out")).to_be_visible()

    # A paid VM and a payment both need the billing profile first (GST: name, address, state)
    expect(page.locator("#profile-needed")).to_be_visible()
    page.locator("#profile-needed").get_by_role("link").click()
    page.locator("#id_legal_name").fill("Ravi Kumar")
    page.locator("#id_address_line1").fill("12 MG Road")
    page.locator("#id_city").fill("Bengaluru")
    page.locator("#id_pin").fill("560001")
    page.locator("#id_state_code").select_option("29")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#messages")).to_contain_text("Billing profile saved")

    # Request a VM: the trial pays for it; a real worker builds it
    page.goto("/")
    page.get_by_role("link", name="Request a VM").first.click()
    page.locator(".choice", has_text="bronze").click()
    page.get_by_label("Image").select_option(str(image.pk))
    page.get_by_label("Name", exact=True).fill("web-1")
    page.get_by_label("SSH public key").fill(SSH_KEY)
    page.get_by_role("button", name="Review price and checks").click()
    expect(page.get_by_text("Quota and balance are fine")).to_be_visible()
    page.get_by_role("button", name="Confirm request").click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Virtual machines").click()
    expect(page.get_by_role("row", name=re.compile("web-1"))).to_contain_text("Active", timeout=40_000)

    # The wallet explains the cost
    page.get_by_role("link", name="Billing").click()
    expect(page.get_by_text(re.compile(r"1 running and 0 stopped"))).to_be_visible()

    # Top up ₹1000 online: the order is made server-side and the page hands off to Checkout
    page.get_by_role("link", name="Wallet").click()
    page.get_by_label("Amount in rupees").first.fill("1000")
    page.get_by_role("button", name="Continue to payment").click()
    expect(page.locator("#checkout-status")).to_contain_text("could not be loaded")
    order_id = page.locator("#order-id").inner_text()
    options = page.evaluate("JSON.parse(document.getElementById('checkout-options').textContent)")
    assert options["order_id"] == order_id and options["amount"] == 100000 and options["currency"] == "INR"
    assert options["key"] == "rzp_test_1DP5mmOlF5G5ag"

    # What Checkout's handler would do with the payment the (fake) gateway made
    paid = razorpay_fake.pay(order_id)
    for name, value in paid.items():
        page.evaluate(f"document.getElementById('{name}').value = {value!r}")
    page.evaluate("document.getElementById('checkout-result').submit()")
    expect(page.get_by_text(re.compile(r"₹1,000.00 added; receipt RV/"))).to_be_visible()
    user_wallet = Wallet.objects.get(project__memberships__user__email=EMAIL)
    assert user_wallet.balance > Decimal("1400")  # 500 trial + 1000 paid, less a little usage

    # The receipt voucher PDF from the payments table
    link = page.locator("a[href*='/receipts/']").first
    expect(link).to_contain_text("RV/")
    pdf = page.request.get(link.get_attribute("href"))
    assert pdf.ok and pdf.body().startswith(b"%PDF")
    assert page.errors == []
