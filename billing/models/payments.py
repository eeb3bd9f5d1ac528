"""Money in and back out through a gateway or the bank: the operator's payment
settings, payments (Razorpay orders and reported bank/UPI transfers), refunds
with their refund vouchers (CGST Rules r.51), and the sign-up trial credit."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from compute.fields import EncryptedJSONField

from ..choices import PaymentMethod, PaymentStatus, RefundStatus
from .config import prefix_validator
from .documents import ReceiptVoucher, TaxDocument

vpa_validator = RegexValidator(r"^[A-Za-z0-9.\-_]{2,256}@[A-Za-z]{2,64}$", "A UPI id looks like name@bank.")
ifsc_validator = RegexValidator(r"^[A-Z]{4}0[A-Z0-9]{6}$", "An IFSC has 11 characters: 4 letters, 0, 6 more.")


class PaymentSettings(models.Model):
    """How customers pay, and the trial credit. One row (pk 1), edited in admin;
    every change is audited (billing.payment_settings_updated). The Razorpay
    keys are encrypted at rest and never shown back; ``RAZORPAY_*`` environment
    variables, when set, take precedence over them."""

    razorpay_enabled = models.BooleanField(default=False, help_text="Offer online payment (UPI, cards, netbanking).")
    razorpay_keys = EncryptedJSONField(blank=True, default=dict, help_text="key_id, key_secret, webhook_secret.")
    min_payment = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("100.00"), validators=[MinValueValidator(Decimal("1.00"))]
    )
    max_payment = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        default=Decimal("100000.00"),
        validators=[MinValueValidator(Decimal("1.00"))],
        help_text="Per payment, online or by transfer.",
    )
    bank_transfer_enabled = models.BooleanField(default=False, help_text="Show bank details / UPI id.")
    bank_account_name = models.CharField(max_length=100, blank=True)
    bank_account_number = models.CharField(max_length=30, blank=True)
    bank_ifsc = models.CharField(max_length=11, blank=True, validators=[ifsc_validator])
    bank_name = models.CharField(max_length=100, blank=True, help_text="Bank and branch.")
    upi_id = models.CharField(max_length=100, blank=True, validators=[vpa_validator], help_text="For the UPI QR.")
    upi_payee_name = models.CharField(max_length=50, blank=True)
    trial_amount = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        default=Decimal("0.00"),
        validators=[MinValueValidator(Decimal("0.00"))],
        help_text="Credit for each newly verified email address; 0 disables the trial.",
    )
    trial_validity_days = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1)], help_text="Unused trial credit expires after this."
    )
    refund_voucher_prefix = models.CharField(max_length=5, default="RFV", validators=[prefix_validator])
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "payment settings"
        verbose_name_plural = "payment settings"

    def __str__(self):
        return "Payment settings"


class Payment(models.Model):
    """Money a customer sends: a Razorpay order (credited once, on a verified
    capture) or a bank/UPI transfer the customer reported (credited when an
    operator confirms it). ``gateway_payment_id`` and ``utr`` are unique, so a
    payment can be credited only once whatever reports it."""

    project = models.ForeignKey("accounts.Project", on_delete=models.PROTECT, related_name="payments")
    method = models.CharField(max_length=16, choices=PaymentMethod.choices)
    status = models.CharField(max_length=16, choices=PaymentStatus.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="INR")
    reference = models.CharField(max_length=40, unique=True, help_text="Ours: order receipt / transfer reference.")
    gateway_order_id = models.CharField(max_length=40, null=True, blank=True, unique=True)
    gateway_payment_id = models.CharField(max_length=40, null=True, blank=True, unique=True)
    gateway_method = models.CharField(max_length=20, blank=True, help_text="upi, card, netbanking... as reported.")
    utr = models.CharField(max_length=40, null=True, blank=True, unique=True, help_text="Bank / UPI reference.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    credited_at = models.DateTimeField(null=True, blank=True)
    credited_via = models.CharField(max_length=40, blank=True, help_text="callback, webhook, operator, statement.")
    receipt = models.OneToOneField(
        ReceiptVoucher, null=True, blank=True, on_delete=models.PROTECT, related_name="payment"
    )
    note = models.CharField(max_length=500, blank=True, help_text="Why it was rejected or failed.")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "-created_at"]), models.Index(fields=["status", "method"])]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=~Q(status=PaymentStatus.CREDITED) | Q(receipt__isnull=False), name="payment_credited_receipt"
            ),
        ]

    def __str__(self):
        return f"{self.reference} ₹{self.amount} ({self.get_status_display()})"


class RefundVoucher(TaxDocument):
    """A refund voucher (CGST Rules r.51): an advance covered by a receipt
    voucher paid back without a supply. Carries the receipt's number and date,
    the amount and the tax refunded, with the receipt's parties and treatment."""

    receipt = models.ForeignKey(ReceiptVoucher, on_delete=models.PROTECT, related_name="refund_vouchers")
    receipt_number = models.CharField(max_length=16)
    receipt_date = models.DateField()
    sac_code = models.CharField(max_length=8)
    gst_rate = models.DecimalField(max_digits=5, decimal_places=2)
    reason = models.CharField(max_length=500)

    class Meta(TaxDocument.Meta):
        constraints = [models.UniqueConstraint(fields=["series", "sequence"], name="refundvoucher_unique_sequence")]


class Refund(models.Model):
    """Unused balance paid back: through the gateway to the original payment,
    or recorded as paid by the operator outside (manual). The wallet is debited
    and the refund voucher issued when it is recorded; the gateway's
    ``refund.processed`` marks it processed."""

    project = models.ForeignKey("accounts.Project", on_delete=models.PROTECT, related_name="refunds")
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="refunds")
    status = models.CharField(max_length=16, choices=RefundStatus.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    gateway_refund_id = models.CharField(max_length=40, null=True, blank=True, unique=True)
    reference = models.CharField(max_length=100, blank=True, help_text="Manual: the bank reference of the payout.")
    entry = models.OneToOneField("billing.LedgerEntry", on_delete=models.PROTECT, related_name="refund_record")
    voucher = models.OneToOneField(RefundVoucher, on_delete=models.PROTECT, related_name="refund")
    created_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive")]

    def __str__(self):
        return f"refund ₹{self.amount} ({self.project})"


class TrialGrant(models.Model):
    """The sign-up trial credit: once per verified email address, ever (the row
    stays when the user or the address goes). Unused credit expires by a
    ledger entry (``expiry_entry``), never by deleting anything."""

    email = models.EmailField(unique=True)
    project = models.ForeignKey("accounts.Project", on_delete=models.PROTECT, related_name="trial_grants")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    granted_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    entry = models.OneToOneField("billing.LedgerEntry", on_delete=models.PROTECT, related_name="trial_grant")
    expiry_entry = models.OneToOneField(
        "billing.LedgerEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="trial_expiry"
    )
    expired_at = models.DateTimeField(null=True, blank=True, help_text="When the expiry job took back what was left.")
    expired_amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)

    class Meta:
        ordering = ["-granted_at"]

    def __str__(self):
        return f"trial ₹{self.amount} for {self.email}"
