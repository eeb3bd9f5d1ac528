"""Reads of payments: settings and keys, a project's payments and refunds,
what a receipt can still refund, what the current VMs cost. Imports no
service."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

from django.conf import settings as django_settings
from django.db.models import QuerySet, Sum
from django.urls import reverse

from accounts.models import Project
from compute.choices import VMStatus
from compute.models import VirtualMachine
from controlplane.errors import NotFound

from ..choices import OPEN_PAYMENT_STATUSES, PaymentMethod, PaymentStatus
from ..models import Payment, PaymentSettings, ReceiptVoucher, Refund, RefundVoucher, TrialGrant
from ..money import ZERO, paise
from ..selectors import billing_settings_get, plan_prices_for_project, wallet_balance
from .gateway import DEFAULT_BASE_URL, Keys

KEY_FIELDS = ("key_id", "key_secret", "webhook_secret")


def payment_settings_get() -> PaymentSettings:
    """The payment settings (one row, created with defaults on first use)."""
    settings, _ = PaymentSettings.objects.get_or_create(pk=1)
    return settings


def razorpay_keys(settings: PaymentSettings | None = None) -> Keys:
    """The Razorpay keys: each ``RAZORPAY_*`` environment variable that is set
    wins over the value stored (encrypted) in the payment settings."""
    stored = (settings or payment_settings_get()).razorpay_keys or {}
    env = {
        "key_id": django_settings.RAZORPAY_KEY_ID,
        "key_secret": django_settings.RAZORPAY_KEY_SECRET,
        "webhook_secret": django_settings.RAZORPAY_WEBHOOK_SECRET,
    }
    values = {name: env[name] or stored.get(name, "") for name in KEY_FIELDS}
    return Keys(**values, base_url=django_settings.RAZORPAY_API_URL or DEFAULT_BASE_URL)


def keys_configured(settings: PaymentSettings | None = None) -> dict[str, bool]:
    """Which keys are set (admin shows this instead of the values)."""
    keys = razorpay_keys(settings)
    return {name: bool(getattr(keys, name)) for name in KEY_FIELDS}


def razorpay_available(settings: PaymentSettings | None = None) -> bool:
    settings = settings or payment_settings_get()
    return settings.razorpay_enabled and razorpay_keys(settings).complete


def payment_list(*, project: Project) -> QuerySet[Payment]:
    return Payment.objects.filter(project=project).select_related("receipt")


def payments_pending(*, project: Project) -> QuerySet[Payment]:
    return payment_list(project=project).filter(status=PaymentStatus.PENDING)


def payment_for_order(*, order_id: str, project: Project | None = None) -> Payment | None:
    rows = Payment.objects.filter(gateway_order_id=order_id, method=PaymentMethod.RAZORPAY)
    return (rows.filter(project=project) if project is not None else rows).first()


def open_transfers() -> QuerySet[Payment]:
    """Reported transfers waiting for an operator, oldest first."""
    return Payment.objects.filter(method=PaymentMethod.BANK_TRANSFER, status__in=OPEN_PAYMENT_STATUSES).order_by(
        "created_at", "id"
    )


def transfer_reference(project: Project) -> str:
    """What a customer writes in a bank transfer's remarks / UPI note, so the
    statement import can find the project: stable per project."""
    return f"CPW{project.pk:06d}"


def upi_uri(*, settings: PaymentSettings, project: Project, amount: Decimal | None) -> str:
    """The NPCI UPI deep link (``upi://pay?pa=...&pn=...&am=...&cu=INR&tn=...``)."""
    params = {"pa": settings.upi_id, "pn": settings.upi_payee_name or settings.bank_account_name or "Payee"}
    if amount:
        params["am"] = f"{amount:.2f}"
    params |= {"cu": "INR", "tn": f"Wallet top-up {transfer_reference(project)}"}
    return "upi://pay?" + urlencode(params)


def refund_list(*, project: Project) -> QuerySet[Refund]:
    return Refund.objects.filter(project=project).select_related("voucher", "payment")


def refund_voucher_get(*, project: Project, pk: int) -> RefundVoucher:
    voucher = RefundVoucher.objects.filter(project=project, pk=pk).first()
    if voucher is None:
        raise NotFound("No such refund voucher.")
    return voucher


def receipt_refundable(*, receipt: ReceiptVoucher) -> Decimal:
    """What is left of a receipt's advance to refund (its total less the refund vouchers against it)."""
    refunded = RefundVoucher.objects.filter(receipt=receipt).aggregate(total=Sum("total"))["total"] or ZERO
    return receipt.total - refunded


def receipts_refundable(*, project: Project) -> list[tuple[ReceiptVoucher, Decimal]]:
    """The project's receipts with something left to refund, newest first."""
    receipts = ReceiptVoucher.objects.filter(project=project).annotate(refunded=Sum("refund_vouchers__total"))
    rows = [(receipt, receipt.total - (receipt.refunded or ZERO)) for receipt in receipts.order_by("-issued_at")]
    return [(receipt, left) for receipt, left in rows if left > 0]


def trial_grants_due(*, now) -> list[int]:
    due = TrialGrant.objects.filter(expires_at__lte=now, expired_at__isnull=True)
    return list(due.order_by("pk").values_list("pk", flat=True))


def trial_active(*, project: Project) -> TrialGrant | None:
    return TrialGrant.objects.filter(project=project, expired_at__isnull=True).order_by("-granted_at").first()


@dataclass(frozen=True)
class BurnRate:
    """What a project's machines cost now, with GST, and how long the balance lasts."""

    running: int  # active VMs
    stopped: int  # stopped VMs (charged the plan's stopped price)
    hourly: Decimal
    monthly: Decimal
    balance: Decimal
    hours_per_month: int

    @property
    def days_left(self) -> Decimal | None:
        """Days the balance covers at this rate (None when nothing is charged)."""
        if self.hourly <= 0:
            return None
        return max(ZERO, (self.balance / (self.hourly * 24)).quantize(Decimal("0.1")))


def burn_rate(*, project: Project, billing_settings=None) -> BurnRate:
    vms = list(
        VirtualMachine.objects.filter(project=project, status__in=[VMStatus.ACTIVE, VMStatus.STOPPED]).select_related(
            "plan"
        )
    )
    plans = {vm.plan_id: vm.plan for vm in vms}
    prices = plan_prices_for_project(plans=plans.values(), project=project, hours=1) if plans else {}
    hourly = sum(
        (
            prices[vm.plan_id].running.total if vm.status == VMStatus.ACTIVE else prices[vm.plan_id].stopped.total
            for vm in vms
        ),
        ZERO,
    )
    hours_per_month = (billing_settings or billing_settings_get()).hours_per_month
    return BurnRate(
        running=sum(vm.status == VMStatus.ACTIVE for vm in vms),
        stopped=sum(vm.status == VMStatus.STOPPED for vm in vms),
        hourly=paise(hourly),
        monthly=paise(hourly * hours_per_month),
        balance=wallet_balance(project=project),
        hours_per_month=hours_per_month,
    )


def webhook_url() -> str:
    """Where Razorpay sends webhooks (entered in its dashboard)."""
    return django_settings.SITE_URL.rstrip("/") + reverse("billing-api:razorpay-webhook")
