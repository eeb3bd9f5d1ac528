"""The operator's payment settings: validated, audited (secrets never in the
audit log: only which key changed)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

import audit
from controlplane.errors import InvalidInput

from ..gst import prefix_error
from ..models import PaymentSettings
from ..selectors import billing_settings_get
from .selectors import KEY_FIELDS, payment_settings_get

SETTINGS_FIELDS = tuple(
    f.name for f in PaymentSettings._meta.concrete_fields if f.name not in {"id", "updated_at", "razorpay_keys"}
)


def payment_settings_validate(values: dict) -> dict[str, str]:
    errors = {}
    if values.get("min_payment") and values.get("max_payment") and values["min_payment"] > values["max_payment"]:
        errors["max_payment"] = "The largest payment must be at least the smallest."
    if values.get("bank_transfer_enabled") and not (
        values.get("upi_id") or (values.get("bank_account_number") and values.get("bank_ifsc"))
    ):
        errors["bank_transfer_enabled"] = "Give a UPI id, or an account number with its IFSC, to show customers."
    billing = billing_settings_get()
    if values.get("refund_voucher_prefix") in {
        billing.invoice_prefix,
        billing.credit_note_prefix,
        billing.receipt_prefix,
    }:
        errors["refund_voucher_prefix"] = "Refund vouchers need their own prefix (invoices, credit notes, receipts)."
    if prefix_error(values.get("refund_voucher_prefix") or ""):
        errors["refund_voucher_prefix"] = prefix_error(values["refund_voucher_prefix"])
    return errors


@transaction.atomic
def payment_settings_update(*, actor, keys: dict | None = None, **changes) -> PaymentSettings:
    """Change settings; ``keys`` sets the Razorpay key id / secret / webhook
    secret given (non-empty values only: a blank keeps the stored one)."""
    unknown = set(changes) - set(SETTINGS_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown payment settings: {', '.join(sorted(unknown))}.")
    payment_settings_get()
    current = PaymentSettings.objects.select_for_update().get(pk=1)
    values = {name: getattr(current, name) for name in SETTINGS_FIELDS} | changes
    errors = payment_settings_validate(values)
    if errors:
        raise InvalidInput("The payment settings are not valid.", fields=errors)
    diff = {name: [str(getattr(current, name)), str(v)] for name, v in changes.items() if getattr(current, name) != v}
    new_keys = {name: value.strip() for name, value in (keys or {}).items() if name in KEY_FIELDS and value.strip()}
    for name, value in values.items():
        setattr(current, name, value)
    if new_keys:
        current.razorpay_keys = {**(current.razorpay_keys or {}), **new_keys}
        diff["razorpay_keys"] = sorted(new_keys)
    try:
        current.full_clean()
    except ValidationError as exc:
        raise InvalidInput("The payment settings are not valid.", fields=exc.message_dict) from None
    current.save()
    if diff:
        audit.record(actor=actor, action="billing.payment_settings_updated", target=current, details=diff)
    return current
