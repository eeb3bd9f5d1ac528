"""A person's first VM, end to end in a real browser: sign up, verify the address,
log in, enrol 2FA, request a VM, an operator approves it in the admin (another
browser), the VM goes building → active on the user's page without a reload
(htmx polling; a real Celery worker drives the simulator), stop, then usage
and an invoice."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import User
from billing import services as billing_services
from compute.choices import VMStatus
from compute.models import VirtualMachine
from tests.fixtures.accounts import PASSWORD, enrol, totp_code
from tests.fixtures.factories import ImageFactory, PlanFactory, UserFactory, make_billable

pytestmark = [pytest.mark.worker, pytest.mark.browser]

EMAIL = "asha@example.com"
USER_PASSWORD = "a-long-and-new-passphrase"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHv4ZmWk8J0vZ2cT1fX4sWw0b6lX1e9l0J0b5j4Yk2cT asha@laptop"


@pytest.fixture
def catalogue(simulator):
    """A plan that needs approval, a Debian image on the simulator, which builds slowly enough to watch."""
    from compute.models import ImageReference

    simulator.region = "Mumbai (simulated)"
    simulator.connection = {**simulator.connection, "latency": 1, "latency_create": 5, "latency_stop": 2}
    simulator.save()
    plan = PlanFactory(name="standard-2", vcpus=2, memory_mib=4096, disk_gib=40, requires_approval=True)
    image = ImageFactory(name="debian-12", os_name="Debian 12 (bookworm)")
    ImageReference.objects.create(image=image, hypervisor=simulator, ref="tmpl-debian-12")
    return plan, image


@pytest.fixture
def operator(db):
    admin = UserFactory(email="ops@example.com", is_staff=True, is_superuser=True)
    admin.codes = enrol(admin)
    return admin


def verification_link() -> str:
    [message] = [m for m in mail.outbox if EMAIL in m.to]
    return re.search(r"https?://\S+/accounts/confirm-email/\S+/", message.body).group(0)


def test_first_vm_from_sign_up_to_invoice(new_page, live_server, live_worker, catalogue, operator, supplier):
    plan, image = catalogue
    page = new_page()

    # Sign up, and open the verification link from the mail
    page.goto("/accounts/signup/")
    page.get_by_label("Email").fill(EMAIL)
    page.locator("#id_password1").fill(USER_PASSWORD)
    page.locator("#id_password2").fill(USER_PASSWORD)
    page.get_by_role("button", name="Sign Up").click()
    expect(page.get_by_role("heading", name="Verify Your Email Address")).to_be_visible()
    page.goto(verification_link().replace("http://testserver", live_server.url))
    page.get_by_role("button", name="Confirm").click()

    # Log in
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(USER_PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()

    # Enrol 2FA: the code is computed from the secret the page shows
    page.get_by_role("link", name="Security").click()
    page.get_by_role("link", name="Set up two-factor authentication").click()
    secret = page.locator("code").first.inner_text().strip()
    page.locator("input[name=otp_token]").fill(totp_code(secret))
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", name="Your backup codes")).to_be_visible()

    # Money arrives (an operator's top-up), then the user requests a VM with the wizard
    user = User.objects.get(email=EMAIL)
    project = user.projects.get()
    make_billable(project, amount="2000.00")  # a billing profile and money (GST: a paid VM needs the profile)
    page.goto("/")
    page.get_by_role("link", name="Request a VM").first.click()
    page.locator(".choice", has_text="standard-2").click()
    page.get_by_label("Image").select_option(str(image.pk))
    page.get_by_label("Name", exact=True).fill("web-1")
    page.get_by_label("SSH public key").fill(SSH_KEY)
    page.get_by_role("button", name="Review price and checks").click()
    expect(page.get_by_role("heading", name="Review your request")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Per month"))).to_contain_text("₹")
    expect(page.get_by_text("Quota and balance are fine")).to_be_visible()
    page.get_by_role("button", name="Confirm request").click()
    expect(page.get_by_role("status")).to_contain_text("Request for web-1 sent")
    expect(page.get_by_role("row", name=re.compile("web-1"))).to_contain_text("Pending approval")

    # In another browser, an operator with 2FA approves it from the admin's landing page
    admin = new_page()
    admin.goto("/admin/login/?next=/admin/")
    admin.get_by_label("Email").fill(operator.email)
    admin.get_by_label("Password").fill(PASSWORD)
    admin.get_by_label("OTP Token").fill(operator.codes.next())
    admin.get_by_role("button", name="Log in").click()
    # django-otp asks which device the code is from (the list appears once the password is right)
    expect(admin.get_by_text("Please select a device.")).to_be_visible()
    admin.get_by_label("Password").fill(PASSWORD)
    admin.get_by_label("OTP Device").select_option(operator.codes.device.persistent_id)
    admin.get_by_label("OTP Token").fill(operator.codes.next())
    admin.get_by_role("button", name="Log in").click()
    attention = admin.locator("#attention")
    expect(attention.get_by_role("region", name=re.compile("Pending requests"))).to_contain_text("web-1")
    attention.get_by_role("link", name=re.compile("Review and approve")).click()
    admin.get_by_role("checkbox", name=re.compile("Select this object")).first.check()
    admin.locator("select[name=action]").select_option("approve")
    admin.get_by_role("button", name="Go").click()
    expect(admin.locator(".messagelist")).to_contain_text("Approved: 1 done")

    # The user opens the VM list: building, then active without a reload
    page.get_by_role("link", name="Virtual machines").click()
    page.evaluate("window.__sameDocument = true")
    row = page.get_by_role("row", name=re.compile("web-1"))
    expect(row).to_contain_text("Building")
    expect(row).to_contain_text("Active", timeout=40_000)
    assert page.evaluate("window.__sameDocument") is True  # htmx swapped the table; nobody reloaded
    page.get_by_role("link", name="web-1").click()
    expect(page.locator("#vm-status")).to_have_text("Active")
    expect(page.locator("#vm-live")).not_to_have_attribute("hx-trigger", re.compile("."))  # idle: no polling
    expect(page.get_by_role("listitem").filter(has_text="Create")).to_contain_text("Succeeded")

    # Stop, confirmed on the page; the status follows without a reload
    page.get_by_text("Stop", exact=True).click()
    page.get_by_role("button", name="Stop now").click()
    page.evaluate("window.__sameDocument = true")
    expect(page.locator("#vm-live")).to_have_attribute("hx-trigger", "every 2s")
    expect(page.locator("#vm-status")).to_have_text("Stopped", timeout=30_000)
    assert page.evaluate("window.__sameDocument") is True
    vm = VirtualMachine.objects.get(project=project, name="web-1")
    assert vm.status == VMStatus.STOPPED

    # Billing meters the hour and invoices it (the jobs' services, run here)
    until = timezone.now() + timedelta(hours=1)
    billing_services.usage_meter(until=until)
    billing_services.usage_charge_pending()
    invoice = billing_services.invoice_issue(project=project, actor="system:tests")
    assert invoice is not None
    page.get_by_role("link", name="Billing").click()
    page.get_by_role("link", name="Usage").click()
    expect(page.get_by_role("img", name=re.compile("Usage by day"))).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("web-1"))).to_contain_text("standard-2")
    page.get_by_role("link", name="Invoices").click()
    expect(page.get_by_role("row", name=invoice.number)).to_be_visible()
    pdf = page.request.get(page.get_by_role("link", name=f"PDF of invoice {invoice.number}").get_attribute("href"))
    assert pdf.ok and pdf.body().startswith(b"%PDF")

    assert page.errors == [] and admin.errors == []
