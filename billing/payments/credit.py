"""The one place a payment becomes a wallet credit, exactly once.

``payment_credit`` locks the wallet (lock order: wallet, payment row, document
series, audit chain), re-reads the payment under its own row lock, and:
already credited → nothing (the second report of the same money); amount or
currency not what the order asked → nothing, the caller learns why;
otherwise ``billing.services.wallet_topup`` credits it (ledger entry, receipt
voucher, suspension lifted, ``wallet.topup``), the payment moves to
credited with a guarded update, and ``payment.received`` is recorded.

Unique columns back this up in the database: a gateway payment id, a UTR and
a ledger top-up reference can each be recorded once.
"""

from __future__ import annotations

import enum
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

import audit
from controlplane.errors import Conflict

from ..choices import OPEN_PAYMENT_STATUSES, PaymentMethod, PaymentStatus
from ..models import Payment
from ..services.ledger import wallet_lock
from ..services.wallet import wallet_topup


class Outcome(enum.Enum):
    CREDITED = "credited"  # credited now
    ALREADY = "already"  # credited before (a replay, the other path came first)
    MISMATCH = "mismatch"  # amount / currency / payment id differ from the order: nothing credited


@transaction.atomic
def payment_credit(
    *,
    payment_pk: int,
    amount: Decimal,
    currency: str,
    actor,
    via: str,
    gateway_payment_id: str | None = None,
    gateway_method: str = "",
    request=None,
) -> tuple[Payment, Outcome, str]:
    """Credit ``payment`` with the money reported (``amount`` in rupees,
    ``currency``); returns the payment, what happened and, for a mismatch,
    why. Crediting a rejected transfer is a 409."""
    project_id = Payment.objects.values_list("project_id", flat=True).get(pk=payment_pk)
    wallet_lock(project_id=project_id)
    payment = Payment.objects.select_for_update(of=("self",)).select_related("project").get(pk=payment_pk)
    if payment.status == PaymentStatus.CREDITED:
        if gateway_payment_id and payment.gateway_payment_id != gateway_payment_id:
            return payment, Outcome.MISMATCH, f"order already paid by {payment.gateway_payment_id}"
        return payment, Outcome.ALREADY, ""
    if payment.status not in OPEN_PAYMENT_STATUSES:
        raise Conflict(f"Payment {payment.reference} is {payment.get_status_display().lower()}; it cannot be credited.")
    if currency != payment.currency:
        return payment, Outcome.MISMATCH, f"currency {currency} but the order is in {payment.currency}"
    if amount != payment.amount:
        return payment, Outcome.MISMATCH, f"amount {amount} but the order is for {payment.amount}"
    if payment.method == PaymentMethod.RAZORPAY:
        mode, reference = f"Razorpay{f' ({gateway_method})' if gateway_method else ''}", gateway_payment_id
    else:
        mode, reference = "Bank transfer / UPI", f"UTR {payment.utr}"
    receipt = wallet_topup(
        project=payment.project, amount=payment.amount, actor=actor, reference=reference, payment_mode=mode
    )
    now = timezone.now()
    fields = {"status": PaymentStatus.CREDITED, "receipt": receipt, "credited_at": now, "credited_via": via}
    if gateway_payment_id:
        fields |= {"gateway_payment_id": gateway_payment_id, "gateway_method": gateway_method[:20]}
    updated = Payment.objects.filter(pk=payment.pk, status=payment.status).update(**fields)
    if updated != 1:  # the row lock makes this impossible; refuse rather than credit twice
        raise Conflict(f"Payment {payment.reference} changed while it was being credited.")
    payment.refresh_from_db()
    audit.record(
        actor=actor,
        action="payment.received",
        target=payment,
        project=payment.project,
        details={
            "method": payment.method,
            "amount": str(payment.amount),
            "reference": payment.reference,
            "gateway_payment_id": payment.gateway_payment_id or "",
            "utr": payment.utr or "",
            "via": via,
            "receipt": receipt.number,
        },
        request=request,
    )
    return payment, Outcome.CREDITED, ""


@transaction.atomic
def payment_ignore_record(*, payment: Payment | None, reason: str, details: dict, actor, request=None) -> None:
    """Audit a report of money that credited nothing (and why)."""
    audit.record(
        actor=actor,
        action="payment.ignored",
        target=payment,
        project=payment.project_id if payment else None,
        details={"reason": reason, **details},
        request=request,
    )
