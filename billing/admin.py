"""Operators' screens. Every write goes through billing.services (validated,
locked, audited): top-ups, adjustments and refunds with a reason, invoices on
demand, credit notes, the supplier settings. Ledger and documents are
read-only here as in the database."""

from datetime import date, datetime, time

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.models import Project
from controlplane.errors import ServiceError

from . import admin_compliance, selectors, services
from .admin_base import DocumentAdmin, ReadOnlyAdmin, ReadOnlyInline, service_form_view
from .admin_forms import refund_form_for
from .documents import einvoice, exports, gstr1, pdf
from .models import (
    BillingProfile,
    BillingSettings,
    CreditNote,
    CreditNoteLine,
    DocumentSeries,
    Invoice,
    InvoiceLine,
    LedgerEntry,
    MeterCursor,
    ReceiptVoucher,
    UsageCharge,
    UsageRecord,
    Wallet,
)
from .payments import refunds
from .periods import billing_tz, parse_month


class SettingsForm(forms.ModelForm):
    class Meta:
        model = BillingSettings
        fields = list(services.config.SETTINGS_FIELDS)

    def clean(self):
        data = super().clean()
        for field, error in services.billing_settings_validate(data).items():
            self.add_error(field if field in self.fields else None, error)
        return data


@admin.register(BillingSettings)
class BillingSettingsAdmin(admin.ModelAdmin):
    """One row: the list page opens it."""

    form = SettingsForm
    fieldsets = [
        ("Supplier", {"fields": ["legal_name", "trade_name", "address_line1", "address_line2", "city", "pin"]}),
        ("Registration", {"fields": ["gstin", "state_code", "email", "phone", "authorised_signatory"]}),
        ("Tax", {"fields": ["sac_code", "gst_rate", "lut_enabled", "lut_reference", "lut_for_sez"]}),
        ("Numbering", {"fields": ["invoice_prefix", "credit_note_prefix", "receipt_prefix"]}),
        ("E-invoice", {"fields": ["einvoice_required", "einvoice_30_day_limit", "irp_public_key"]}),
        (
            "Policy",
            {
                "fields": [
                    "low_balance_thresholds",
                    "grace_hours",
                    "precheck_hours",
                    "auto_start_after_suspension",
                    "hours_per_month",
                    "metering_starts_at",
                    "transfer_price_per_gb",
                    "snapshot_price_per_gib_hour",
                    "backup_price_per_gib_hour",
                ]
            },
        ),
    ]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        settings = selectors.billing_settings_get()
        return HttpResponseRedirect(reverse("admin:billing_billingsettings_change", args=[settings.pk]))

    def save_model(self, request, obj, form, change):
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        services.billing_settings_update(actor=request.user, **changes)


class ProfileForm(forms.ModelForm):
    class Meta:
        model = BillingProfile
        fields = ["project", *services.config.PROFILE_FIELDS]

    def clean(self):
        data = super().clean()
        _, errors = services.billing_profile_validate(data)
        for field, error in errors.items():
            self.add_error(field if field in self.fields else None, error)
        return data


@admin.register(BillingProfile)
class BillingProfileAdmin(admin.ModelAdmin):
    form = ProfileForm
    list_display = ["project", "legal_name", "state_code", "country", "gstin", "is_sez", "updated_at"]
    list_filter = ["is_sez", "country", "state_code"]
    search_fields = ["project__name", "project__slug", "legal_name", "gstin"]

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        values = {name: form.cleaned_data.get(name) for name in services.config.PROFILE_FIELDS}
        services.billing_profile_update(project=form.cleaned_data["project"], actor=request.user, **values)


class MoneyForm(forms.Form):
    amount = forms.DecimalField(max_digits=14, decimal_places=2, help_text="Rupees.")
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}))


class TopUpForm(MoneyForm):
    reason = forms.CharField(max_length=500, required=False, help_text="Why, when there is no payment reference.")
    payment_mode = forms.CharField(max_length=50, required=False, help_text="NEFT, UPI, card...")
    reference = forms.CharField(max_length=100, required=False, help_text="Bank / gateway reference (recorded once).")

    def clean(self):
        data = super().clean()
        if not (data.get("reason", "").strip() or data.get("reference", "").strip()):
            self.add_error("reason", "Give the payment reference or say why the money is credited.")
        return data


class AdjustForm(MoneyForm):
    amount = forms.DecimalField(max_digits=14, decimal_places=2, help_text="Rupees; negative to debit.")


class InvoiceNowForm(forms.Form):
    confirm = forms.BooleanField(label="Invoice all metered, uninvoiced usage of this project now")


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = ["project", "balance", "negative_since", "suspended_by_billing", "tools"]
    list_filter = ["suspended_by_billing"]
    search_fields = ["project__name", "project__slug"]
    list_select_related = ["project"]

    @admin.display(description="Operator actions")
    def tools(self, wallet):
        links = [("topup", "Top up"), ("adjust", "Adjust"), ("refund", "Refund"), ("invoice", "Invoice now")]
        return format_html(
            " · ".join(f'<a href="{{}}">{label}</a>' for _, label in links),
            *(reverse(f"admin:billing_wallet_{name}", args=[wallet.pk]) for name, _ in links),
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/topup/", view(self.topup_view), name="billing_wallet_topup"),
            path("<int:pk>/adjust/", view(self.adjust_view), name="billing_wallet_adjust"),
            path("<int:pk>/refund/", view(self.refund_view), name="billing_wallet_refund"),
            path("<int:pk>/invoice/", view(self.invoice_view), name="billing_wallet_invoice"),
            *super().get_urls(),
        ]

    def _wallet(self, request, pk):
        """The wallet of project ``pk`` (a wallet's pk is its project's), opened on first use."""
        if not request.user.has_perm("billing.change_wallet"):
            raise PermissionDenied
        wallet = services.wallet_open(project=get_object_or_404(Project, pk=pk))
        return Wallet.objects.select_related("project").get(pk=wallet.pk)

    def _back(self):
        return reverse("admin:billing_wallet_changelist")

    def topup_view(self, request, pk):
        wallet = self._wallet(request, pk)

        def run(data):
            receipt = services.wallet_topup(
                project=wallet.project,
                amount=data["amount"],
                actor=request.user,
                reason=data["reason"],
                payment_mode=data["payment_mode"],
                reference=data["reference"],
            )
            return f"Credited ₹{receipt.total} to {wallet.project}; receipt {receipt.number}."

        return service_form_view(
            request, title="Top up", form_class=TopUpForm, target=wallet, run=run, back=self._back()
        )

    def adjust_view(self, request, pk):
        wallet = self._wallet(request, pk)

        def run(data):
            entry = services.wallet_adjust(
                project=wallet.project, amount=data["amount"], actor=request.user, reason=data["reason"]
            )
            return f"Adjusted {wallet.project} by ₹{entry.amount}; balance ₹{entry.balance_after}."

        return service_form_view(
            request, title="Adjust balance", form_class=AdjustForm, target=wallet, run=run, back=self._back()
        )

    def refund_view(self, request, pk):
        wallet = self._wallet(request, pk)
        form_class = refund_form_for(wallet.project)

        def run(data):
            refund = refunds.refund_issue(
                receipt=data["receipt"],
                amount=data["amount"],
                actor=request.user,
                reason=data["reason"],
                manual=data["manual"],
                reference=data["reference"],
                request=request,
            )
            return f"Refunded ₹{refund.amount} from {wallet.project}; refund voucher {refund.voucher.number}."

        return service_form_view(
            request, title="Refund", form_class=form_class, target=wallet, run=run, back=self._back()
        )

    def invoice_view(self, request, pk):
        wallet = self._wallet(request, pk)

        def run(data):
            invoices = services.invoices_issue(project=wallet.project, actor=request.user)
            if not invoices:
                return f"{wallet.project} has no uninvoiced usage."
            return "Issued " + ", ".join(f"invoice {invoice.number} for ₹{invoice.total}" for invoice in invoices) + "."

        return service_form_view(
            request, title="Issue invoice now", form_class=InvoiceNowForm, target=wallet, run=run, back=self._back()
        )


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "project", "kind", "amount", "balance_after", "description", "actor"]
    list_filter = ["kind", "created_at"]
    search_fields = ["project__name", "project__slug", "reference", "description", "reason"]
    list_select_related = ["project"]
    date_hierarchy = "created_at"


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    fields = ["position", "description", "sac_code", "quantity", "rate", "taxable", "cgst", "sgst", "igst", "total"]


class CreditNoteForm(forms.Form):
    amount = forms.DecimalField(
        max_digits=14, decimal_places=2, required=False, help_text="Taxable value to credit; blank credits all left."
    )
    gst_rate = forms.DecimalField(max_digits=5, decimal_places=2, required=False, help_text="When several rates.")
    reason = forms.CharField(max_length=500)
    date = forms.DateField(required=False, help_text="Blank: today. Not after 30 November following the invoice's FY.")
    backdate_reason = forms.CharField(
        max_length=500, required=False, help_text="Only to date the note before its invoice: why (recorded)."
    )


@admin.register(Invoice)
class InvoiceAdmin(DocumentAdmin):
    inlines = [InvoiceLineInline]
    renderer = pdf.invoice_pdf
    list_display = [*DocumentAdmin.list_display, "e_invoice", "credit", "tds"]

    @admin.display(description="E-invoice")
    def e_invoice(self, invoice):
        return admin_compliance.einvoice_cell(invoice)

    def get_queryset(self, request):
        return admin_compliance.invoices_for_admin(super().get_queryset(request))

    @admin.display(description="TDS")
    def tds(self, invoice):
        return format_html('<a href="{}">Record…</a>', reverse("admin:billing_invoice_tds", args=[invoice.pk]))

    @admin.display(description="Credit note")
    def credit(self, invoice):
        return format_html('<a href="{}">Issue…</a>', reverse("admin:billing_invoice_credit", args=[invoice.pk]))

    def get_urls(self):
        view, name = self.admin_site.admin_view, "billing_invoice_einvoice"
        return [
            path("<int:pk>/e-invoice/", view(self.einvoice_view), name=name),
            path("<int:pk>/credit-note/", view(self.credit_view), name="billing_invoice_credit"),
            path("<int:pk>/e-invoice/import/", view(admin_compliance.einvoice_import_view), name=f"{name}_import"),
            path("<int:pk>/tds/", view(admin_compliance.tds_view), name="billing_invoice_tds"),
            path("export-csv/", view(self.export_view), name="billing_invoice_export"),
            path("gstr1/", view(self.gstr1_view), name="billing_invoice_gstr1"),
            *super().get_urls(),
        ]

    def einvoice_view(self, request, pk):
        invoice = get_object_or_404(Invoice, pk=pk)
        try:
            warning = services.einvoice_export_check(invoice=invoice)
            data = einvoice.document_json(invoice)
        except ServiceError as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(reverse("admin:billing_invoice_changelist"))
        if warning:
            messages.warning(request, warning)
        response = JsonResponse(data, json_dumps_params={"indent": 2})
        response["Content-Disposition"] = f'attachment; filename="{invoice.number.replace("/", "-")}.json"'
        return response

    def credit_view(self, request, pk):
        invoice = get_object_or_404(Invoice, pk=pk)
        if not request.user.has_perm("billing.add_creditnote"):
            raise PermissionDenied

        def run(data):
            note = services.credit_note_issue(
                invoice=invoice,
                amount=data["amount"],
                gst_rate=data["gst_rate"],
                reason=data["reason"],
                actor=request.user,
                at=datetime.combine(data["date"], time(12), tzinfo=billing_tz()) if data["date"] else None,
                backdate_reason=data["backdate_reason"],
            )
            return f"Issued credit note {note.number} for ₹{note.total} against {invoice.number}."

        return service_form_view(
            request,
            title=f"Credit note against {invoice.number}",
            form_class=CreditNoteForm,
            target=invoice,
            run=run,
            back=reverse("admin:billing_creditnote_changelist"),
        )

    def export_view(self, request):
        start = _date(request.GET.get("start")) or date.today().replace(day=1)
        end = _date(request.GET.get("end")) or date.today()
        response = HttpResponse(exports.documents_csv(start=start, end=end), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="gst-documents-{start}-{end}.csv"'
        return response

    def gstr1_view(self, request):
        month = parse_month(request.GET.get("month"), None)
        if month is None:
            messages.error(request, "Choose the month of the GSTR-1 (YYYY-MM).")
            return HttpResponseRedirect(reverse("admin:billing_invoice_changelist"))
        try:
            report = gstr1.Gstr1(month, gstin=request.GET.get("gstin") or None)
        except ServiceError as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(reverse("admin:billing_invoice_changelist"))
        response = HttpResponse(report.zip(), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{report.name}.zip"'
        return response

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "export_url": reverse("admin:billing_invoice_export"),
            "gstr1_url": reverse("admin:billing_invoice_gstr1"),
            "gstins": selectors.supplier_gstins(),
        }
        return super().changelist_view(request, extra_context)


def _date(value):
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


class CreditNoteLineInline(ReadOnlyInline):
    model = CreditNoteLine
    fields = ["position", "description", "sac_code", "taxable", "gst_rate", "cgst", "sgst", "igst", "total"]


@admin.register(CreditNote)
class CreditNoteAdmin(DocumentAdmin):
    inlines = [CreditNoteLineInline]
    renderer = pdf.credit_note_pdf
    list_display = [*DocumentAdmin.list_display, "invoice", "reason"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ReceiptVoucher)
class ReceiptVoucherAdmin(DocumentAdmin):
    renderer = pdf.receipt_pdf
    list_display = [*DocumentAdmin.list_display, "payment_mode", "payment_reference"]


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = ["hour_start", "project", "vm", "plan", "running_seconds", "stopped_seconds", "amount", "charge"]
    list_filter = ["hour_start"]
    search_fields = ["project__slug", "vm__name"]
    list_select_related = ["project", "vm", "plan"]
    date_hierarchy = "hour_start"


@admin.register(UsageCharge)
class UsageChargeAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "project", "period", "hour_from", "hour_to", "taxable", "tax", "total", "invoice"]
    list_filter = ["period"]
    search_fields = ["project__slug"]
    list_select_related = ["project", "invoice"]


@admin.register(MeterCursor)
class MeterCursorAdmin(ReadOnlyAdmin):
    list_display = ["vm", "project", "metered_until", "status", "closed"]
    list_filter = ["closed", "status"]
    list_select_related = ["vm", "project"]


@admin.register(DocumentSeries)
class DocumentSeriesAdmin(ReadOnlyAdmin):
    list_display = ["prefix", "financial_year", "kind", "last_number"]


from . import admin_payments, admin_projects  # noqa: E402,F401  (payments; projects list actions)
