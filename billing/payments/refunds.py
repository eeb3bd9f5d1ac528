"""Refunds of unused balance, each with its refund voucher (CGST Rules r.51)
against the receipt voucher of the advance.

Through Razorpay (to the original payment) or manual (the operator paid it
outside and records the bank reference). Under the wallet lock: the amount is
checked against the balance and against what the receipt has left; for
Razorpay the refund is then asked of the gateway (the lock is held for that
one call: a refused or failed call writes nothing); the ledger debit, the
voucher (numbered in its own series) and the ``Refund`` row follow in the
same transaction. Razorpay's ``refund.processed`` marks it processed.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

import audit
from controlplane.errors import Conflict, InvalidInput

from ..choices import DocumentKind, EntryKind, PaymentMethod, RefundStatus
from ..models import ReceiptVoucher, Refund, RefundVoucher
from ..money import format_inr
from ..services.documents import numbered, parties_of, totals_fields
from ..services.ledger import amount_parse, entry_post, wallet_lock
from ..services.wallet import advance_totals
from .gateway import GatewayRefused, GatewayUnavailable, from_paise, to_paise
from .razorpay import GatewayDown, gateway
from .selectors import payment_settings_get, receipt_refundable

logger = logging.getLogger(__name__)


@transaction.atomic
def refund_issue(
    *, receipt: ReceiptVoucher, amount, actor, reason: str, manual: bool = False, reference: str = "", request=None
) -> Refund:
    """Pay back ``amount`` of the advance on ``receipt``: to its Razorpay
    payment, or (``manual``) recorded as paid outside with ``reference``."""
    amount = amount_parse(amount)
    if amount <= 0:
        raise InvalidInput("Refund a positive amount.", fields={"amount": "Must be positive."})
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Say why the money is refunded (printed on the voucher).", fields={"reason": "Required."})
    wallet = wallet_lock(project_id=receipt.project_id)
    if amount > wallet.balance:
        raise Conflict(f"The wallet holds ₹{format_inr(wallet.balance)}; a refund cannot exceed it.")
    left = receipt_refundable(receipt=receipt)
    if amount > left:
        raise Conflict(f"Receipt {receipt.number} has ₹{format_inr(left)} left to refund.")
    payment = getattr(receipt, "payment", None)
    at = timezone.now()
    refund_id, status = None, RefundStatus.PROCESSED
    if manual:
        reference = (reference or "").strip()
        if not reference:
            raise InvalidInput("Give the bank reference of the payout.", fields={"reference": "Required."})
    else:
        if payment is None or payment.method != PaymentMethod.RAZORPAY or not payment.gateway_payment_id:
            raise Conflict(f"Receipt {receipt.number} was not paid through Razorpay: record a manual refund.")
        refund_id, status = _gateway_refund(payment, amount, receipt)
    number = numbered(
        kind=DocumentKind.REFUND_VOUCHER, prefix=payment_settings_get().refund_voucher_prefix, at=at, actor=actor
    )
    entry = entry_post(
        wallet=wallet,
        kind=EntryKind.REFUND,
        amount=-amount,
        description=f"Refund against {receipt.number}",
        actor=actor,
        reason=reason,
        reference=refund_id or number["number"],
        at=at,
    )
    totals = advance_totals(amount=amount, gst_rate=receipt.gst_rate, regime=receipt.regime)
    voucher = RefundVoucher.objects.create(
        **number,
        **parties_of(receipt),
        **totals_fields(totals),
        project_id=receipt.project_id,
        receipt=receipt,
        receipt_number=receipt.number,
        receipt_date=receipt.date,
        sac_code=receipt.sac_code,
        gst_rate=receipt.gst_rate,
        reason=reason[:500],
    )
    refund = Refund.objects.create(
        project_id=receipt.project_id,
        payment=payment,
        status=status,
        amount=amount,
        gateway_refund_id=refund_id,
        reference=reference[:100] if manual else "",
        entry=entry,
        voucher=voucher,
        created_at=at,
        processed_at=at if status == RefundStatus.PROCESSED else None,
    )
    audit.record(
        actor=actor,
        action="refund.issued",
        target=refund,
        project=receipt.project_id,
        details={
            "amount": str(amount),
            "receipt": receipt.number,
            "voucher": voucher.number,
            "way": "manual" if manual else "razorpay",
            "gateway_refund_id": refund_id or "",
            "balance": str(wallet.balance),
        },
        request=request,
    )
    return refund


def _gateway_refund(payment, amount, receipt) -> tuple[str, str]:
    try:
        refunded = gateway().refund_create(
            payment_id=payment.gateway_payment_id,
            amount=to_paise(amount),
            receipt=f"RF-{receipt.number}"[:40],
            notes={"receipt": receipt.number, "project": str(receipt.project_id)},
        )
    except GatewayRefused as exc:
        raise Conflict(f"Razorpay refused the refund: {exc}") from exc
    except GatewayUnavailable as exc:
        logger.warning("razorpay refund of %s failed: %s", payment.gateway_payment_id, exc)
        raise GatewayDown("Razorpay is not reachable; nothing was refunded. Try again later.") from exc
    if from_paise(refunded.amount) != amount:
        logger.error("razorpay refund %s is for %s, asked %s", refunded.id, refunded.amount, amount)
    status = RefundStatus.PROCESSED if refunded.status == "processed" else RefundStatus.PENDING
    return refunded.id, status
