"""Forms of the operators' money screens (refunds, payment settings, transfers)."""

from django import forms

from .models import PaymentSettings, ReceiptVoucher
from .payments import selectors as payment_selectors
from .payments.settings import SETTINGS_FIELDS, payment_settings_validate


class ReceiptChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, receipt):
        left = self.left[receipt.pk]
        return f"{receipt.number} of {receipt.date:%d %b %Y}: ₹{receipt.total} ({receipt.payment_mode}), ₹{left} left"


def refund_form_for(project):
    """A refund form listing the project's receipts that still have something to refund."""
    left = {receipt.pk: amount for receipt, amount in payment_selectors.receipts_refundable(project=project)}

    class RefundForm(forms.Form):
        receipt = ReceiptChoiceField(
            queryset=ReceiptVoucher.objects.filter(pk__in=left).order_by("-issued_at"),
            help_text="The receipt voucher of the advance being paid back.",
        )
        amount = forms.DecimalField(max_digits=14, decimal_places=2, help_text="Rupees.")
        reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}))
        manual = forms.BooleanField(
            required=False, label="Paid outside Razorpay", help_text="Record a refund you paid yourself (bank, UPI)."
        )
        reference = forms.CharField(max_length=100, required=False, help_text="Bank reference of a manual refund.")

    RefundForm.base_fields["receipt"].left = left
    return RefundForm


KEY_HELP = "Write-only: blank keeps the stored value. A RAZORPAY_* environment variable wins over it."


class PaymentSettingsForm(forms.ModelForm):
    key_id = forms.CharField(required=False, max_length=100, help_text=KEY_HELP, label="Razorpay key id")
    key_secret = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), label="Razorpay key secret", help_text=KEY_HELP
    )
    webhook_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        label="Razorpay webhook secret",
        help_text=KEY_HELP,
    )

    class Meta:
        model = PaymentSettings
        fields = list(SETTINGS_FIELDS)

    def clean(self):
        data = super().clean()
        for field, error in payment_settings_validate(data).items():
            self.add_error(field if field in self.fields else None, error)
        return data


class RejectTransferForm(forms.Form):
    reason = forms.CharField(max_length=500, help_text="Shown to the customer.")


class StatementForm(forms.Form):
    statement = forms.FileField(
        help_text="CSV export of the bank statement (header row; Credit and Narration columns)."
    )
