from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator
from django.urls import reverse
from rest_framework import serializers

from controlplane.api import JSONTypesMixin

from ..choices import SupplyType
from ..gst import RECIPIENT_ID_SHAPE, STATES, GSTINError, validate_gstin
from ..models import BillingProfile, CreditNote, Invoice, InvoiceLine, LedgerEntry, ReceiptVoucher, Wallet
from ..selectors import billing_settings_get
from ..services.config import PROFILE_FIELDS

MONEY = {"max_digits": 14, "decimal_places": 2}


class WalletSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    currency = serializers.SerializerMethodField()
    suspended = serializers.SerializerMethodField()

    class Meta:
        model = Wallet
        fields = ["project", "balance", "currency", "negative_since", "suspended"]

    def get_currency(self, wallet) -> str:
        return "INR"

    def get_suspended(self, wallet) -> bool:
        return wallet.project.is_suspended


class LedgerEntrySerializer(serializers.ModelSerializer):
    invoice = serializers.SlugRelatedField(slug_field="number", read_only=True, allow_null=True)
    credit_note = serializers.SlugRelatedField(slug_field="number", read_only=True, allow_null=True)
    receipt = serializers.SerializerMethodField()

    class Meta:
        model = LedgerEntry
        fields = [
            "id",
            "created_at",
            "kind",
            "amount",
            "balance_after",
            "description",
            "reason",
            "reference",
            "invoice",
            "credit_note",
            "receipt",
        ]

    def get_receipt(self, entry) -> str | None:
        receipt = getattr(entry, "receipt", None)
        return receipt.number if receipt else None


class UsageDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    running_hours = serializers.DecimalField(max_digits=12, decimal_places=2)
    stopped_hours = serializers.DecimalField(max_digits=12, decimal_places=2)
    amount = serializers.DecimalField(**MONEY)


class UsageVMSerializer(UsageDaySerializer):
    day = None
    vm_id = serializers.IntegerField()
    vm = serializers.CharField()
    plan = serializers.CharField()


class UsageSerializer(serializers.Serializer):
    month = serializers.CharField()
    by_day = UsageDaySerializer(many=True)
    by_vm = UsageVMSerializer(many=True)


class InvoiceLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = InvoiceLine
        fields = [
            "position",
            "description",
            "sac_code",
            "quantity",
            "unit",
            "rate",
            "taxable",
            "gst_rate",
            "cgst_rate",
            "cgst",
            "sgst_rate",
            "sgst",
            "igst_rate",
            "igst",
            "total",
        ]


DOCUMENT_FIELDS = [
    "id",
    "number",
    "date",
    "financial_year",
    "place_of_supply",
    "place_of_supply_name",
    "supply_type",
    "regime",
    "taxable_total",
    "cgst_total",
    "sgst_total",
    "igst_total",
    "tax_total",
    "round_off",
    "total",
    "pdf_url",
]


class DocumentSerializer(serializers.ModelSerializer):
    pdf_url = serializers.SerializerMethodField()
    pdf_route = ""

    def get_pdf_url(self, doc) -> str:
        url = reverse(self.pdf_route, kwargs={"slug": doc.project.slug, "pk": doc.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


class InvoiceSerializer(DocumentSerializer):
    pdf_route = "billing-api:invoice-pdf"
    einvoice_status = serializers.SerializerMethodField(
        help_text="registered: IRN and signed QR code imported; pending: the operator e-invoices and the IRN is "
        "not there yet (the PDF answers 409 until it is); not_required: B2C, or the operator does not e-invoice."
    )
    irn = serializers.CharField(read_only=True, allow_null=True, help_text="Invoice Reference Number from the IRP.")
    ack_no = serializers.CharField(read_only=True, allow_null=True, help_text="The IRP's acknowledgement number.")
    ack_date = serializers.DateTimeField(read_only=True, allow_null=True)
    tds_total = serializers.DecimalField(
        **MONEY, read_only=True, help_text="Income-tax TDS you deducted on this invoice, as recorded (credited)."
    )

    class Meta:
        model = Invoice
        fields = DOCUMENT_FIELDS + ["period_start", "period_end", "einvoice_status", "irn", "ack_no", "ack_date"]
        fields += ["tds_total"]

    def get_einvoice_status(self, invoice) -> str:
        if invoice.irn:
            return "registered"
        if "einvoice_required" not in self.context:
            self.context["einvoice_required"] = billing_settings_get().einvoice_required
        if self.context["einvoice_required"] and invoice.supply_type != SupplyType.B2C:
            return "pending"
        return "not_required"


class InvoiceDetailSerializer(InvoiceSerializer):
    lines = InvoiceLineSerializer(many=True, read_only=True)

    class Meta(InvoiceSerializer.Meta):
        fields = InvoiceSerializer.Meta.fields + ["supplier", "customer", "endorsement", "state_tax_label", "lines"]


class CreditNoteSerializer(DocumentSerializer):
    pdf_route = "billing-api:credit-note-pdf"
    invoice = serializers.SlugRelatedField(slug_field="number", read_only=True)

    class Meta:
        model = CreditNote
        fields = DOCUMENT_FIELDS + ["invoice", "reason"]


class ReceiptSerializer(DocumentSerializer):
    pdf_route = "billing-api:receipt-pdf"

    class Meta:
        model = ReceiptVoucher
        fields = DOCUMENT_FIELDS + ["payment_mode", "payment_reference"]


class BillingProfileSerializer(JSONTypesMixin, serializers.ModelSerializer):
    state_code = serializers.ChoiceField(choices=[*STATES, ""], required=False, allow_blank=True)
    gstin = serializers.CharField(required=False, allow_blank=True)
    updated_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="null while the project has no billing profile yet."
    )

    class Meta:
        model = BillingProfile
        fields = [*PROFILE_FIELDS, "updated_at"]
        extra_kwargs = {name: {"validators": []} for name in fields}


# What the schema can say of each field (each pattern refuses "" where blank is allowed:
# an empty value is the schema's other branch). billing_profile_validate has the same rules
# and those across fields, which a JSON Schema cannot state (in the description below).
_NO_NUL = "[^\\x00]"
_NOT_BLANK = f"^{_NO_NUL}*[^\\s\\x00]{_NO_NUL}*$"
_AT_LEAST_3 = f"^{_NO_NUL}*[^\\s\\x00]{_NO_NUL}+[^\\s\\x00]{_NO_NUL}*$"
_FIELD_RULES = {
    "legal_name": (_AT_LEAST_3, "Required (at least 3 characters)."),
    "address_line1": (_AT_LEAST_3, "Required (at least 3 characters)."),
    "address_line2": (f"^{_NO_NUL}+$", "No NUL characters."),
    "city": (_AT_LEAST_3, "Required (at least 3 characters)."),
    "pin": (_NOT_BLANK, "Required (the postal code)."),
    "country": ("^[A-Za-z]{2}$", "A two-letter ISO country code such as IN or US."),
}


class GSTINShapeValidator(RegexValidator):
    """The shape of a GSTIN, a GST-TDS registration or a UIN (drf-spectacular writes the regex
    into the schema; which one the profile's ``registration_type`` names is checked by the
    service); when it matches none, the message says what is wrong, as
    ``billing.gst.validate_gstin`` does."""

    regex = f"^(?:{RECIPIENT_ID_SHAPE})$"

    def __call__(self, value):
        try:
            super().__call__(value)
        except DjangoValidationError:
            try:
                validate_gstin(value)
            except GSTINError as exc:
                raise DjangoValidationError(str(exc)) from None
            raise


class BillingProfileInputSerializer(BillingProfileSerializer):
    """A project's billing profile. Rules across fields (billing_profile_validate):
    in India (`country` IN, the default) a 6-digit PIN not starting with 0, a state in
    `state_code`, and a `gstin` (optional; required for an SEZ) valid with its check
    character whose first two digits are that state; abroad no `gstin` and `is_sez` false."""

    gstin = serializers.CharField(
        required=False,
        allow_blank=True,
        validators=[GSTINShapeValidator()],
    )

    class Meta(BillingProfileSerializer.Meta):
        extra_kwargs = {
            name: {"validators": [RegexValidator(*_FIELD_RULES[name])] if name in _FIELD_RULES else []}
            for name in BillingProfileSerializer.Meta.fields
        }


class PlanPriceSerializer(serializers.Serializer):
    plan = serializers.CharField()
    plan_id = serializers.IntegerField()
    tax = serializers.CharField()
    gst_rate = serializers.DecimalField(max_digits=5, decimal_places=2)
    hourly_running = serializers.DecimalField(max_digits=12, decimal_places=4)
    hourly_running_with_gst = serializers.DecimalField(**MONEY)
    hourly_stopped = serializers.DecimalField(max_digits=12, decimal_places=4)
    hourly_stopped_with_gst = serializers.DecimalField(**MONEY)
    monthly_with_gst = serializers.DecimalField(**MONEY)
    hours_per_month = serializers.IntegerField()
    required_balance = serializers.DecimalField(**MONEY)
    required_hours = serializers.IntegerField()
