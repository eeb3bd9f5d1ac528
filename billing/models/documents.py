"""GST documents: tax invoices, credit notes and receipt vouchers.

Documents are immutable once issued: numbers come from ``DocumentSeries``
under a row lock, and the supplier, customer, place of supply and rates are
copied into the row at issue time. On PostgreSQL a trigger rejects UPDATE and
DELETE on these tables.
"""

from decimal import Decimal

from django.db import models

from ..choices import DocumentKind, Regime, SupplyType

ZERO = Decimal("0.00")


def money_field(**kwargs):
    return models.DecimalField(max_digits=14, decimal_places=2, default=ZERO, **kwargs)


class DocumentSeries(models.Model):
    """A gapless number series: one per prefix and financial year."""

    kind = models.CharField(max_length=16, choices=DocumentKind.choices)
    prefix = models.CharField(max_length=5)
    financial_year = models.CharField(max_length=7, help_text="2025-26")
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "document series"
        ordering = ["-financial_year", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["prefix", "financial_year"], name="series_unique_prefix_year"),
        ]

    def __str__(self):
        return f"{self.prefix} {self.financial_year} (last {self.last_number})"


class TaxDocument(models.Model):
    """What every GST document carries: number, parties and tax treatment as
    they were at issue, and totals (sums of the lines; round-off separate)."""

    number = models.CharField(max_length=16, unique=True)
    series = models.ForeignKey(DocumentSeries, on_delete=models.PROTECT, related_name="+")
    sequence = models.PositiveIntegerField()
    financial_year = models.CharField(max_length=7)
    date = models.DateField(help_text="Document date in the billing time zone.")
    issued_at = models.DateTimeField()
    issued_by = models.CharField(max_length=200)
    project = models.ForeignKey("accounts.Project", on_delete=models.PROTECT, related_name="+")
    supplier = models.JSONField(help_text="Supplier as at issue.")
    customer = models.JSONField(help_text="Customer (billing profile) as at issue.")
    place_of_supply = models.CharField(max_length=2)
    place_of_supply_name = models.CharField(max_length=100)
    supply_type = models.CharField(max_length=8, choices=SupplyType.choices)
    regime = models.CharField(max_length=16, choices=Regime.choices)
    state_tax_label = models.CharField(max_length=5, default="SGST")
    endorsement = models.CharField(max_length=200, blank=True)
    reverse_charge = models.BooleanField(default=False)
    taxable_total = money_field()
    cgst_total = money_field()
    sgst_total = money_field()
    igst_total = money_field()
    tax_total = money_field()
    round_off = money_field()
    total = money_field()

    class Meta:
        abstract = True
        ordering = ["-issued_at", "-id"]

    def __str__(self):
        return self.number


class Invoice(TaxDocument):
    """A tax invoice (Rule 46) for a project's usage in a period."""

    period_start = models.DateTimeField()
    period_end = models.DateTimeField()

    class Meta(TaxDocument.Meta):
        constraints = [models.UniqueConstraint(fields=["series", "sequence"], name="invoice_unique_sequence")]
        indexes = [models.Index(fields=["project", "-issued_at"])]


class CreditNote(TaxDocument):
    """A credit note (Rule 53) against an issued invoice, in its own series."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    reason = models.CharField(max_length=500)

    class Meta(TaxDocument.Meta):
        constraints = [models.UniqueConstraint(fields=["series", "sequence"], name="creditnote_unique_sequence")]


class ReceiptVoucher(TaxDocument):
    """A receipt voucher (Rule 50) for a top-up: an advance for services. The
    tax lines show the GST included in the amount received."""

    entry = models.OneToOneField("billing.LedgerEntry", on_delete=models.PROTECT, related_name="receipt")
    payment_mode = models.CharField(max_length=50, blank=True)
    payment_reference = models.CharField(max_length=100, blank=True)
    sac_code = models.CharField(max_length=8)
    gst_rate = models.DecimalField(max_digits=5, decimal_places=2)

    class Meta(TaxDocument.Meta):
        constraints = [models.UniqueConstraint(fields=["series", "sequence"], name="receipt_unique_sequence")]


class TaxLine(models.Model):
    position = models.PositiveSmallIntegerField()
    description = models.CharField(max_length=255)
    sac_code = models.CharField(max_length=8)
    quantity = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal("1"))
    unit = models.CharField(max_length=8, default="HRS")
    rate = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal("0"))
    taxable = money_field()
    gst_rate = models.DecimalField(max_digits=5, decimal_places=2)
    cgst_rate = models.DecimalField(max_digits=5, decimal_places=2, default=ZERO)
    cgst = money_field()
    sgst_rate = models.DecimalField(max_digits=5, decimal_places=2, default=ZERO)
    sgst = money_field()
    igst_rate = models.DecimalField(max_digits=5, decimal_places=2, default=ZERO)
    igst = money_field()
    total = money_field()

    class Meta:
        abstract = True
        ordering = ["position"]

    def __str__(self):
        return self.description


class InvoiceLine(TaxLine):
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="lines")
    vm = models.ForeignKey("compute.VirtualMachine", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    plan = models.ForeignKey("compute.Plan", null=True, blank=True, on_delete=models.PROTECT, related_name="+")


class CreditNoteLine(TaxLine):
    credit_note = models.ForeignKey(CreditNote, on_delete=models.PROTECT, related_name="lines")
