"""Operators' screens for e-invoice registration (import the IRP's response),
income-tax TDS (record a deduction and its certificate) and the operator's
further GST registrations. Writes go through billing.services."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Value
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from compute.models import Hypervisor

from . import selectors, services
from .admin_base import ReadOnlyAdmin, service_form_view
from .choices import SupplyType, TdsSection
from .gst import EINVOICE_REPORTING_DAYS
from .models import EInvoiceResponse, Invoice, SupplierRegistration, TdsDeduction
from .periods import local_date

WARN_DAYS = 7  # the e-invoice column turns into a warning this many days before the reporting limit


class EInvoiceImportForm(forms.Form):
    response = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 14, "cols": 100}),
        help_text="Paste the IRP's response JSON for this invoice: the registration (Irn, AckNo, AckDt, "
        "SignedQRCode) or the error list (ErrorDetails).",
    )


class TdsForm(forms.Form):
    section = forms.ChoiceField(choices=TdsSection.choices)
    rate = forms.DecimalField(max_digits=5, decimal_places=2, help_text="Percent, e.g. 2 or 10.")
    amount = forms.DecimalField(max_digits=14, decimal_places=2, help_text="Rupees the customer deducted.")
    deducted_on = forms.DateField(help_text="YYYY-MM-DD")
    certificate_number = forms.CharField(max_length=20, required=False, help_text="Form 16A, when received.")
    certificate_date = forms.DateField(required=False)


class TdsCertificateForm(forms.Form):
    certificate_number = forms.CharField(max_length=20, help_text="Form 16A certificate number.")
    certificate_date = forms.DateField(help_text="YYYY-MM-DD")


def einvoice_cell(invoice: Invoice) -> str:
    """The invoice list's e-invoice column (rows from ``invoices_for_admin``):
    JSON download, import link, state, and a warning as the 30-day reporting
    limit comes close."""
    if invoice.supply_type == SupplyType.B2C:
        return "-"
    if invoice.irn:
        return format_html("IRN {}… (ack {})", invoice.irn[:10], invoice.ack_no)
    links = format_html(
        '<a href="{}">JSON</a> · <a href="{}">Import response…</a>',
        reverse("admin:billing_invoice_einvoice", args=[invoice.pk]),
        reverse("admin:billing_invoice_einvoice_import", args=[invoice.pk]),
    )
    if not invoice.einvoice_30_day_limit:
        return links
    left = services.einvoice_days_left(invoice=invoice, today=local_date(timezone.now()))
    if left < 0:
        return format_html("{} <strong>past the {}-day limit</strong>", links, EINVOICE_REPORTING_DAYS)
    if left <= WARN_DAYS:
        return format_html("{} <strong>{} day(s) left to report</strong>", links, left)
    return links


def invoices_for_admin(queryset):
    """Invoices with their IRN, TDS and the settings the e-invoice column needs, in one query."""
    settings = selectors.billing_settings_get()
    return selectors.invoices_with_compliance(queryset).annotate(
        einvoice_30_day_limit=Value(settings.einvoice_30_day_limit)
    )


def einvoice_import_view(request, pk):
    invoice = get_object_or_404(Invoice, pk=pk)
    if not request.user.has_perm("billing.add_einvoiceresponse"):
        raise PermissionDenied

    def run(data):
        response = services.einvoice_response_import(invoice=invoice, payload=data["response"], actor=request.user)
        if response.irn:
            checked = "signature verified" if response.signature_verified else "signature NOT checked (no IRP key)"
            return f"Invoice {invoice.number} registered: IRN {response.irn}, ack {response.ack_no}; {checked}."
        return f"The IRP rejected {invoice.number}: " + "; ".join(
            f"{e['code']} {e['message']}" for e in response.errors
        )

    return service_form_view(
        request,
        title=f"Import the IRP's response for {invoice.number}",
        form_class=EInvoiceImportForm,
        target=invoice,
        run=run,
        back=reverse("admin:billing_invoice_changelist"),
    )


def tds_view(request, pk):
    invoice = get_object_or_404(Invoice, pk=pk)
    if not request.user.has_perm("billing.add_tdsdeduction"):
        raise PermissionDenied

    def run(data):
        deduction = services.tds_record(invoice=invoice, actor=request.user, **data)
        return f"Recorded TDS of ₹{deduction.amount} u/s {deduction.section} on {invoice.number}; wallet credited."

    return service_form_view(
        request,
        title=f"Income-tax TDS deducted on {invoice.number}",
        form_class=TdsForm,
        target=invoice,
        run=run,
        back=reverse("admin:billing_tdsdeduction_changelist"),
    )


@admin.register(EInvoiceResponse)
class EInvoiceResponseAdmin(ReadOnlyAdmin):
    list_display = ["imported_at", "invoice", "status", "irn", "ack_no", "ack_date", "signature_verified"]
    list_filter = ["status", "signature_verified"]
    search_fields = ["invoice__number", "irn", "ack_no"]
    list_select_related = ["invoice"]


@admin.register(TdsDeduction)
class TdsDeductionAdmin(ReadOnlyAdmin):
    list_display = ["deducted_on", "invoice", "project", "section", "rate", "amount", "certificate_cell"]
    list_filter = ["section"]
    search_fields = ["invoice__number", "project__slug", "certificate__number"]
    list_select_related = ["invoice", "project", "certificate"]

    @admin.display(description="Form 16A")
    def certificate_cell(self, deduction):
        certificate = getattr(deduction, "certificate", None)
        if certificate is not None:
            return f"{certificate.number} ({certificate.issued_on:%d/%m/%Y})"
        url = reverse("admin:billing_tdsdeduction_certificate", args=[deduction.pk])
        return format_html('<a href="{}">Record…</a>', url)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/certificate/", view(self.certificate_view), name="billing_tdsdeduction_certificate"),
            *super().get_urls(),
        ]

    def certificate_view(self, request, pk):
        deduction = get_object_or_404(TdsDeduction, pk=pk)
        if not request.user.has_perm("billing.add_tdscertificate"):
            raise PermissionDenied

        def run(data):
            certificate = services.tds_certificate_record(
                deduction=deduction,
                number=data["certificate_number"],
                issued_on=data["certificate_date"],
                actor=request.user,
            )
            return f"Recorded certificate {certificate.number}."

        return service_form_view(
            request,
            title=f"Form 16A for TDS on {deduction.invoice.number}",
            form_class=TdsCertificateForm,
            target=deduction,
            run=run,
            back=reverse("admin:billing_tdsdeduction_changelist"),
        )


class RegistrationForm(forms.ModelForm):
    hypervisors = forms.ModelMultipleChoiceField(
        Hypervisor.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="VMs on these hypervisors are invoiced under this GSTIN (moved from any other registration).",
    )

    class Meta:
        model = SupplierRegistration
        fields = list(services.registrations.REGISTRATION_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["hypervisors"] = list(self.instance.locations.values_list("hypervisor_id", flat=True))

    def clean(self):
        data = super().clean()
        errors = services.supplier_registration_validate(data, instance=self.instance if self.instance.pk else None)
        for field, error in errors.items():
            self.add_error(field if field in self.fields else None, error)
        return data


@admin.register(SupplierRegistration)
class SupplierRegistrationAdmin(admin.ModelAdmin):
    """Further GST registrations; the principal one is in Billing settings."""

    form = RegistrationForm
    list_display = ["gstin", "state", "city", "invoice_prefix", "credit_note_prefix", "hypervisor_names"]

    @admin.display(description="State")
    def state(self, registration):
        return registration.state_code

    @admin.display(description="Hypervisors")
    def hypervisor_names(self, registration):
        return ", ".join(location.hypervisor.name for location in registration.locations.select_related("hypervisor"))

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        values = {name: form.cleaned_data.get(name, "") for name in services.registrations.REGISTRATION_FIELDS}
        saved = services.supplier_registration_save(
            actor=request.user,
            registration=obj if change else None,
            hypervisors=form.cleaned_data.get("hypervisors"),
            **values,
        )
        obj.pk = saved.pk
