"""Demo billing data for the embedded default (called by seed_demo). Idempotent.

Besides the supplier and the demo users' money: a trial credit for every new
sign-up (so a self-service user gets a first VM with no operator step), and
bank transfer / UPI shown with placeholder details (change them in admin →
Payment settings). Razorpay stays off until an operator enters keys.

Every demo project gets a billing profile (a paid VM needs one), and three
demo customer projects get last month's usage invoiced (billing/demo.py), so
that a GSTR-1 can be exported for this month right away."""

from django.core.management.base import BaseCommand

from accounts.models import Project, User
from billing import selectors, services
from billing.demo import demo_gst_month_seed
from billing.models import LedgerEntry
from billing.payments.selectors import payment_settings_get
from billing.payments.settings import payment_settings_update

DEMO_PAYMENTS = {
    "trial_amount": "500.00",
    "trial_validity_days": 30,
    "bank_transfer_enabled": True,
    "bank_account_name": "Demo Cloud Private Limited",
    "bank_account_number": "000000000000",
    "bank_ifsc": "DEMO0000001",
    "bank_name": "Demo bank (placeholder: change in Payment settings)",
    "upi_id": "democloud@upi",
    "upi_payee_name": "Demo Cloud",
}
DEMO_SUPPLIER = {
    "legal_name": "Demo Cloud Private Limited",
    "trade_name": "Demo Cloud",
    "address_line1": "Demo address, change in Billing settings",
    "city": "Pune",
    "pin": "411001",
    "gstin": "27AAPFU0939F1ZV",
    "state_code": "27",
    "authorised_signatory": "Asha Operator",
}

DEMO_PROFILE = {
    "legal_name": "Priya Sharma",
    "address_line1": "Demo address, change on the billing profile page",
    "city": "Mumbai",
    "pin": "400001",
    "state_code": "27",
}


class Command(BaseCommand):
    help = "Configure a demo supplier (if none) and put money in the demo users' wallets."

    def add_arguments(self, parser):
        parser.add_argument("--email", action="append", default=None, help="users whose projects get money")
        parser.add_argument("--amount", default="5000.00")

    def handle(self, *args, email=None, amount="5000.00", **options):
        if not selectors.billing_settings_get().legal_name:
            services.billing_settings_update(actor="system:seed", **DEMO_SUPPLIER)
        if not payment_settings_get().trial_amount:
            payment_settings_update(actor="system:seed", **DEMO_PAYMENTS)
        for project in Project.objects.filter(memberships__user__email__in=email or ["demo@example.com"]).distinct():
            if not LedgerEntry.objects.filter(project=project, reference="demo-seed").exists():
                services.wallet_topup(
                    project=project, amount=amount, actor="system:seed", reference="demo-seed", payment_mode="demo"
                )
            if selectors.profile_get(project=project) is None:
                services.billing_profile_update(project=project, actor="system:seed", **DEMO_PROFILE)
        owner = User.objects.filter(email__in=email or ["demo@example.com"]).order_by("pk").first()
        invoices = demo_gst_month_seed(owner=owner) if owner else []
        if invoices:
            month = invoices[0].date.strftime("%Y-%m")
            self.stdout.write(f"Seeded {len(invoices)} demo invoices: manage.py billing_export_gstr1 --month {month}")
        self.stdout.write(self.style.SUCCESS("Demo billing ready."))
