from decimal import Decimal

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from ..choices import RegistrationType
from ..gst import STATE_CHOICES

prefix_validator = RegexValidator(
    r"^[A-Z][A-Z0-9]{0,4}$",
    "1-5 capital letters or digits, starting with a letter (numbers stay within 16 characters).",
)
pin_validator = RegexValidator(r"^[1-9][0-9]{5}$", "An Indian PIN code has 6 digits and does not start with 0.")


class BillingSettings(models.Model):
    """The operator's supplier details and billing policy. One row (pk 1),
    edited in Django admin; every change is audited (billing.settings_updated)."""

    legal_name = models.CharField(max_length=100, blank=True)
    trade_name = models.CharField(max_length=100, blank=True)
    address_line1 = models.CharField(max_length=100, blank=True)
    address_line2 = models.CharField(max_length=100, blank=True)
    city = models.CharField(max_length=50, blank=True)
    pin = models.CharField(max_length=6, blank=True, validators=[pin_validator])
    gstin = models.CharField(max_length=15, blank=True, help_text="The supplier's state is its first two digits.")
    state_code = models.CharField(
        max_length=2, choices=STATE_CHOICES, default="27", help_text="Must match the GSTIN's first two digits."
    )
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=20, blank=True)
    authorised_signatory = models.CharField(max_length=100, blank=True)
    sac_code = models.CharField(max_length=8, default="998315", help_text="For receipts and credits without a plan.")
    gst_rate = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("18.00"), help_text="Percent.")
    lut_enabled = models.BooleanField(
        default=False, help_text="Exports are zero-rated under a Letter of Undertaking (no IGST)."
    )
    lut_reference = models.CharField(max_length=50, blank=True, help_text="ARN of the LUT for this financial year.")
    lut_for_sez = models.BooleanField(
        default=False, help_text="Also supply SEZ customers under the LUT (default: SEZ pays IGST)."
    )
    einvoice_required = models.BooleanField(
        default=False,
        help_text="Aggregate turnover above the e-invoice threshold: a B2B invoice reaches the customer only with "
        "its IRN and signed QR code (Rule 48(4)).",
    )
    einvoice_30_day_limit = models.BooleanField(
        default=False,
        help_text="Turnover of ₹10 crore or more: the IRP refuses invoices older than 30 days.",
    )
    irp_public_key = models.TextField(
        blank=True,
        help_text="The IRP's public key (PEM) to check the signature of imported signed QR codes; blank: not checked.",
    )
    invoice_prefix = models.CharField(max_length=5, default="INV", validators=[prefix_validator])
    credit_note_prefix = models.CharField(max_length=5, default="CN", validators=[prefix_validator])
    receipt_prefix = models.CharField(max_length=5, default="RV", validators=[prefix_validator])
    low_balance_thresholds = models.CharField(
        max_length=200,
        default="500,100",
        help_text="Comma-separated rupee amounts; an email when the balance drops below each.",
    )
    grace_hours = models.PositiveIntegerField(
        default=72, help_text="A project whose balance stays below zero this long is suspended."
    )
    precheck_hours = models.PositiveIntegerField(
        default=24,
        validators=[MinValueValidator(1)],
        help_text="A new VM needs this many hours of its plan in the wallet.",
    )
    auto_start_after_suspension = models.BooleanField(
        default=False, help_text="Start the VMs billing stopped once a top-up lifts the suspension."
    )
    transfer_price_per_gb = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Rupees per GB (10^9 bytes) of monthly transfer over a plan's allowance, before GST; 0: free.",
    )
    snapshot_price_per_gib_hour = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Rupees per GiB-hour of snapshot storage (as the hypervisor reports the size), before GST; 0: free.",
    )
    backup_price_per_gib_hour = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Rupees per GiB-hour of backup storage (as the hypervisor reports the size), before GST; 0: free.",
    )
    hours_per_month = models.PositiveIntegerField(default=730, help_text="For monthly prices shown to users.")
    metering_starts_at = models.DateTimeField(
        null=True, blank=True, help_text="No usage before this instant is metered (billing added to a running cloud)."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "billing settings"
        verbose_name_plural = "billing settings"

    def __str__(self):
        return "Billing settings"

    @property
    def thresholds(self) -> list[Decimal]:
        """Low-balance thresholds, highest first."""
        values = {Decimal(v.strip()) for v in self.low_balance_thresholds.split(",") if v.strip()}
        return sorted(values, reverse=True)


class BillingProfile(models.Model):
    """Who a project's invoices are addressed to. Place of supply and the tax
    heads are derived from it (billing.gst.treatment)."""

    project = models.OneToOneField(
        "accounts.Project", on_delete=models.CASCADE, primary_key=True, related_name="billing_profile"
    )
    legal_name = models.CharField(max_length=100)
    address_line1 = models.CharField(max_length=100)
    address_line2 = models.CharField(max_length=100, blank=True)
    city = models.CharField(max_length=50)
    pin = models.CharField(max_length=10, help_text="PIN code in India; postal code abroad.")
    state_code = models.CharField(max_length=2, choices=STATE_CHOICES, help_text="96 (Other Countries) abroad.")
    country = models.CharField(max_length=2, default="IN", help_text="ISO 3166 two-letter code.")
    gstin = models.CharField(max_length=15, blank=True, help_text="Blank for an unregistered customer.")
    registration_type = models.CharField(
        max_length=8,
        choices=RegistrationType.choices,
        default=RegistrationType.REGULAR,
        help_text="What the GSTIN field holds: a GSTIN, a GST-TDS registration or a UIN.",
    )
    is_sez = models.BooleanField(default=False, help_text="A unit or developer in a Special Economic Zone.")
    billing_email = models.EmailField(blank=True, help_text="Also receives low-balance emails.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"billing profile of {self.project}"
