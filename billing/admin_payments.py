"""Operators' payment screens: payment settings (keys write-only), payments
with bank-transfer confirmation (one, several, or a bank-statement CSV),
refunds and refund vouchers, trial grants. Writes go through billing.payments."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse

from controlplane.errors import ServiceError

from .admin_base import DocumentAdmin, ReadOnlyAdmin
from .admin_forms import PaymentSettingsForm, RejectTransferForm, StatementForm
from .choices import PaymentMethod, PaymentStatus
from .documents import pdf
from .models import Payment, PaymentSettings, Refund, RefundVoucher, TrialGrant
from .payments import selectors, transfers
from .payments.selectors import KEY_FIELDS
from .payments.settings import payment_settings_update


@admin.register(PaymentSettings)
class PaymentSettingsAdmin(admin.ModelAdmin):
    """One row: the list page opens it. Keys are write-only."""

    form = PaymentSettingsForm
    readonly_fields = ["keys_set", "webhook_url"]
    fieldsets = [
        (
            "Razorpay",
            {"fields": ["razorpay_enabled", "key_id", "key_secret", "webhook_secret", "keys_set", "webhook_url"]},
        ),
        ("Limits", {"fields": ["min_payment", "max_payment"]}),
        (
            "Bank transfer / UPI",
            {
                "fields": [
                    "bank_transfer_enabled",
                    "bank_account_name",
                    "bank_account_number",
                    "bank_ifsc",
                    "bank_name",
                    "upi_id",
                    "upi_payee_name",
                ]
            },
        ),
        ("Trial credit", {"fields": ["trial_amount", "trial_validity_days"]}),
        ("Numbering", {"fields": ["refund_voucher_prefix"]}),
    ]

    @admin.display(description="Keys set")
    def keys_set(self, obj):
        return ", ".join(f"{name}: {'set' if ok else 'missing'}" for name, ok in selectors.keys_configured(obj).items())

    @admin.display(description="Webhook URL (Razorpay dashboard)")
    def webhook_url(self, obj):
        return selectors.webhook_url()

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        settings = selectors.payment_settings_get()
        return HttpResponseRedirect(reverse("admin:billing_paymentsettings_change", args=[settings.pk]))

    def save_model(self, request, obj, form, change):
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name not in KEY_FIELDS}
        keys = {name: form.cleaned_data.get(name) or "" for name in KEY_FIELDS}
        payment_settings_update(actor=request.user, keys=keys, **changes)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "project", "method", "status", "amount", "utr", "gateway_payment_id", "receipt"]
    list_filter = ["status", "method"]
    search_fields = ["reference", "utr", "gateway_order_id", "gateway_payment_id", "project__slug", "project__name"]
    list_select_related = ["project", "receipt"]
    actions = ["confirm_transfers", "reject_transfers"]

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("billing.change_payment") and obj is None  # actions only

    def get_urls(self):
        view = self.admin_site.admin_view
        return [path("statement/", view(self.statement_view), name="billing_payment_statement"), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "statement_url": reverse("admin:billing_payment_statement")}
        return super().changelist_view(request, extra_context)

    @admin.action(
        description="Confirm: the money is in the bank (credits the wallet, issues the receipt)",
        permissions=["change"],
    )
    def confirm_transfers(self, request, queryset):
        done = 0
        for payment in queryset.filter(method=PaymentMethod.BANK_TRANSFER, status=PaymentStatus.PENDING):
            try:
                done += transfers.transfer_confirm(payment=payment, actor=request.user, request=request)
            except ServiceError as exc:
                self.message_user(request, f"{payment.reference}: {exc.message}", messages.WARNING)
        self.message_user(request, f"Credited {done} transfer(s).", messages.SUCCESS if done else messages.WARNING)

    @admin.action(description="Reject: no such money arrived (asks for a reason)", permissions=["change"])
    def reject_transfers(self, request, queryset):
        form = RejectTransferForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            done = 0
            for payment in queryset:
                try:
                    transfers.transfer_reject(
                        payment=payment, actor=request.user, reason=form.cleaned_data["reason"], request=request
                    )
                    done += 1
                except ServiceError as exc:
                    self.message_user(request, f"{payment.reference}: {exc.message}", messages.WARNING)
            self.message_user(request, f"Rejected {done} transfer(s).")
            return None
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "payments": queryset,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "title": "Reject transfers",
        }
        return render(request, "admin/billing/reject_transfers.html", context)

    def statement_view(self, request):
        if not request.user.has_perm("billing.change_payment"):
            raise PermissionDenied
        form = StatementForm(request.POST or None, request.FILES or None)
        result = None
        if request.method == "POST" and form.is_valid():
            try:
                result = transfers.transfer_statement_import(
                    data=form.cleaned_data["statement"].read(), actor=request.user, request=request
                )
            except ServiceError as exc:
                form.add_error("statement", exc.message)
        context = {**self.admin_site.each_context(request), "title": "Import a bank statement", "form": form}
        context |= {"result": result, "back": reverse("admin:billing_payment_changelist")}
        return render(request, "admin/billing/statement_import.html", context)


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "project", "amount", "status", "payment", "gateway_refund_id", "reference", "voucher"]
    list_filter = ["status"]
    search_fields = ["project__slug", "gateway_refund_id", "reference"]
    list_select_related = ["project", "payment", "voucher"]


@admin.register(RefundVoucher)
class RefundVoucherAdmin(DocumentAdmin):
    renderer = pdf.refund_voucher_pdf
    list_display = [*DocumentAdmin.list_display, "receipt_number", "reason"]


@admin.register(TrialGrant)
class TrialGrantAdmin(ReadOnlyAdmin):
    list_display = ["granted_at", "email", "project", "amount", "expires_at", "expired_at", "expired_amount"]
    search_fields = ["email", "project__slug"]
    list_select_related = ["project"]
