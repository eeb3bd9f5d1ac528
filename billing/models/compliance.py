"""What GST and income tax add around issued invoices: the IRP's e-invoice
responses, income-tax TDS a customer deducted, and the operator's further GST
registrations (one per state it supplies from).

E-invoice responses and TDS deductions are append-only on PostgreSQL (the
trigger of migration 0002); a TDS certificate arriving later is a new row of
``TdsCertificate``, never an edit.
"""

from decimal import Decimal

from django.db import models
from django.db.models import Q

from ..choices import EInvoiceStatus, TdsSection
from .config import pin_validator, prefix_validator


class EInvoiceResponse(models.Model):
    """One import of the Invoice Registration Portal's answer for an invoice:
    the registration (IRN, acknowledgement, signed QR code) or the error list."""

    invoice = models.ForeignKey("billing.Invoice", on_delete=models.PROTECT, related_name="einvoice_responses")
    status = models.CharField(max_length=16, choices=EInvoiceStatus.choices)
    irn = models.CharField(max_length=64, blank=True)
    ack_no = models.CharField(max_length=20, blank=True)
    ack_date = models.DateTimeField(null=True, blank=True)
    signed_qr_code = models.TextField(blank=True, help_text="The IRP's signed QR code (a JWT), printed as the QR.")
    signed_invoice = models.TextField(blank=True)
    signature_verified = models.BooleanField(
        default=False, help_text="The QR code's signature was checked with the IRP public key of Billing settings."
    )
    errors = models.JSONField(default=list, blank=True, help_text="The IRP's error list of a rejection.")
    raw = models.JSONField(help_text="The response as imported.")
    imported_at = models.DateTimeField()
    imported_by = models.CharField(max_length=200)

    class Meta:
        ordering = ["-imported_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice"], condition=Q(status=EInvoiceStatus.REGISTERED), name="einvoice_one_irn_per_invoice"
            ),
            models.UniqueConstraint(fields=["irn"], condition=~Q(irn=""), name="einvoice_irn_unique"),
        ]

    def __str__(self):
        return f"{self.get_status_display()} {self.irn[:12]}"


class TdsDeduction(models.Model):
    """Income-tax TDS a business customer deducted from what it paid for an
    invoice; credited to the project's wallet (the customer paid it to the
    government on the operator's account: Form 26AS shows it)."""

    invoice = models.ForeignKey("billing.Invoice", on_delete=models.PROTECT, related_name="tds_deductions")
    project = models.ForeignKey("accounts.Project", on_delete=models.PROTECT, related_name="+")
    section = models.CharField(max_length=8, choices=TdsSection.choices)
    rate = models.DecimalField(max_digits=5, decimal_places=2, help_text="Percent of the value before GST.")
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    deducted_on = models.DateField()
    entry = models.OneToOneField("billing.LedgerEntry", on_delete=models.PROTECT, related_name="tds_deduction")
    recorded_at = models.DateTimeField()
    recorded_by = models.CharField(max_length=200)

    class Meta:
        ordering = ["-recorded_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=Decimal("0")), name="tds_amount_positive")]

    def __str__(self):
        return f"TDS {self.section} ₹{self.amount} on {self.invoice_id}"


class TdsCertificate(models.Model):
    """The TDS certificate (Form 16A from TRACES) for a deduction."""

    deduction = models.OneToOneField(TdsDeduction, on_delete=models.PROTECT, related_name="certificate")
    number = models.CharField(max_length=20, help_text="Form 16A certificate number.")
    issued_on = models.DateField()
    recorded_at = models.DateTimeField()
    recorded_by = models.CharField(max_length=200)

    def __str__(self):
        return self.number


class SupplierRegistration(models.Model):
    """A further GST registration of the operator, in another state. Invoices
    for VMs on its hypervisors are issued under it, numbered in its own series;
    everything else uses the principal registration of Billing settings."""

    gstin = models.CharField(max_length=15, unique=True)
    address_line1 = models.CharField(max_length=100)
    address_line2 = models.CharField(max_length=100, blank=True)
    city = models.CharField(max_length=50)
    pin = models.CharField(max_length=6, validators=[pin_validator])
    invoice_prefix = models.CharField(max_length=5, validators=[prefix_validator], unique=True)
    credit_note_prefix = models.CharField(max_length=5, validators=[prefix_validator], unique=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["gstin"]

    def __str__(self):
        return self.gstin

    @property
    def state_code(self) -> str:
        return self.gstin[:2]


class SupplierLocation(models.Model):
    """A hypervisor in a registration's state: a hypervisor is in at most one."""

    registration = models.ForeignKey(SupplierRegistration, on_delete=models.CASCADE, related_name="locations")
    hypervisor = models.OneToOneField("compute.Hypervisor", on_delete=models.CASCADE, related_name="supplier_location")

    def __str__(self):
        return f"{self.hypervisor} → {self.registration}"
