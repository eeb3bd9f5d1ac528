"""Razorpay: orders, the browser's callback after Checkout, and webhooks.

A wallet is credited only on a capture the server verified: the browser's
``razorpay_signature`` is checked with the SDK's utility and the payment is
then fetched from Razorpay (status ``captured``, this order, its amount and
currency); a webhook is trusted once its ``X-Razorpay-Signature`` matches the
webhook secret. Both paths end in ``credit.payment_credit``, which credits a
payment once whichever arrives first and however often.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

import audit
from accounts.models import Project
from controlplane.errors import Conflict, InvalidInput, NotFound, ServiceError

from ..choices import PaymentMethod, PaymentStatus, RefundStatus
from ..models import Payment, Refund
from ..money import format_inr
from ..selectors import profile_get
from ..services.ledger import amount_parse
from .credit import Outcome, payment_credit, payment_ignore_record
from .gateway import (
    Gateway,
    GatewayPayment,
    GatewayRefused,
    GatewayUnavailable,
    from_paise,
    payment_from,
    refund_from,
    to_paise,
)
from .selectors import payment_for_order, payment_settings_get, razorpay_available, razorpay_keys

logger = logging.getLogger(__name__)
WEBHOOK_ACTOR = "system:razorpay-webhook"
CREDIT_EVENTS = ("payment.captured", "order.paid")


class GatewayDown(ServiceError):
    code = "gateway_unavailable"
    status = 503


def gateway() -> Gateway:
    return Gateway(razorpay_keys())


def amount_check(value, *, settings) -> object:
    """A payment amount from a customer: rupees, positive, within the operator's limits."""
    amount = amount_parse(value)
    if amount <= 0:
        raise InvalidInput("Pay a positive amount.", fields={"amount": "Must be positive."})
    if amount < settings.min_payment:
        message = f"The smallest payment is ₹{format_inr(settings.min_payment)}."
        raise InvalidInput(message, fields={"amount": message})
    if amount > settings.max_payment:
        message = f"At most ₹{format_inr(settings.max_payment)} per payment; pay the rest separately."
        raise InvalidInput(message, fields={"amount": message})
    return amount


def profile_require(project: Project) -> None:
    """A receipt voucher names the customer and the place of supply: ask for the profile first."""
    if profile_get(project=project) is None:
        raise Conflict(
            "Add the billing profile (name, address, state) first: it goes on the receipt voucher.",
            code="billing_profile_required",
        )


def razorpay_order_create(*, project: Project, amount, actor) -> Payment:
    """Create a Razorpay order for ``amount`` rupees and record it (awaiting
    payment). The order is created first, outside any transaction: a failure
    there writes nothing."""
    settings = payment_settings_get()
    if not razorpay_available(settings):
        raise Conflict("Online payment is not set up; pay by bank transfer or ask the operator.")
    amount = amount_check(amount, settings=settings)
    profile_require(project)
    reference = f"TOP{project.pk}-{secrets.token_hex(6).upper()}"
    try:
        order = gateway().order_create(
            amount=to_paise(amount), currency="INR", receipt=reference, notes={"project": project.slug}
        )
    except GatewayRefused as exc:
        raise Conflict(f"Razorpay refused the order: {exc}") from exc
    except GatewayUnavailable as exc:
        logger.warning("razorpay order for project %s failed: %s", project.pk, exc)
        raise GatewayDown("Razorpay is not reachable right now; try again in a minute.") from exc
    if order.amount != to_paise(amount) or order.currency != "INR":
        raise GatewayDown("Razorpay answered with a different amount; nothing was created.")
    return Payment.objects.create(
        project=project,
        method=PaymentMethod.RAZORPAY,
        status=PaymentStatus.CREATED,
        amount=amount,
        currency="INR",
        reference=reference,
        gateway_order_id=order.id,
        created_by=actor if getattr(actor, "pk", None) else None,
    )


@dataclass(frozen=True)
class CallbackResult:
    payment: Payment
    credited: bool  # the wallet holds the money (now or before)
    message: str


def razorpay_callback(*, project: Project, order_id: str, payment_id: str, signature: str, actor, request=None):
    """The browser's report after Checkout (``razorpay_order_id``,
    ``razorpay_payment_id``, ``razorpay_signature``). Unknown order (checked
    first: the project's own orders are no secret to its members): 404; forged
    signature: 400; a payment that does not match the order: 409 (audited);
    authorised but not captured yet: nothing credited (the webhook will)."""
    values = {"razorpay_order_id": order_id, "razorpay_payment_id": payment_id, "razorpay_signature": signature}
    missing = {name: "Required." for name, value in values.items() if not (value or "").strip()}
    if missing:
        raise InvalidInput("The payment details from Checkout are incomplete.", fields=missing)
    payment = payment_for_order(order_id=order_id, project=project)
    if payment is None:
        raise NotFound("No such order for this project.")
    client = gateway()
    if not client.payment_signature_valid(order_id=order_id, payment_id=payment_id, signature=signature):
        logger.warning("razorpay callback with a bad signature: project %s order %s", project.pk, order_id)
        payment_ignore_record(
            payment=None, reason="bad signature", details={"order": order_id[:40]}, actor=actor, request=request
        )
        raise InvalidInput("The payment signature does not match; nothing was credited.")
    try:
        reported = client.payment_fetch(payment_id)
    except GatewayRefused as exc:
        raise Conflict(f"Razorpay does not know payment {payment_id}: {exc}") from exc
    except GatewayUnavailable as exc:
        raise GatewayDown(
            "Razorpay is not reachable to confirm the payment; it will be credited when Razorpay reports it."
        ) from exc
    if reported.order_id != order_id:
        return _refuse(payment, f"payment {payment_id} belongs to order {reported.order_id}", actor, request)
    if reported.status != "captured":
        return CallbackResult(payment, False, f"Payment {reported.status}; the wallet is credited once it is captured.")
    payment, outcome, why = _credit(payment, reported, actor=actor, via="callback", request=request)
    if outcome is Outcome.MISMATCH:
        return _refuse(payment, why, actor, request)
    return CallbackResult(payment, True, f"₹{format_inr(payment.amount)} added; receipt {payment.receipt.number}.")


def _credit(payment: Payment, reported: GatewayPayment, *, actor, via: str, request=None):
    """Credit what Razorpay reported as captured for ``payment``'s order."""
    return payment_credit(
        payment_pk=payment.pk,
        amount=from_paise(reported.amount),
        currency=reported.currency,
        gateway_payment_id=reported.id,
        gateway_method=reported.method,
        actor=actor,
        via=via,
        request=request,
    )


def _refuse(payment: Payment, reason: str, actor, request):
    payment_ignore_record(
        payment=payment, reason=reason, details={"order": payment.gateway_order_id}, actor=actor, request=request
    )
    raise Conflict(f"This payment does not match the order ({reason}); nothing was credited.")


@dataclass(frozen=True)
class WebhookResult:
    status: int
    message: str


def razorpay_webhook(*, body: bytes, signature: str) -> WebhookResult:
    """A webhook from Razorpay. Bad signature or body: 400 (logged, not
    audited: anyone can send it). Otherwise 200, having credited a captured
    payment once (``payment.captured``, ``order.paid``), marked a refund
    processed (``refund.processed``), or audited why nothing happened."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return WebhookResult(400, "not UTF-8")
    if not signature or not gateway().webhook_signature_valid(body=text, signature=signature):
        logger.warning("razorpay webhook with a bad signature ignored (%d bytes)", len(body))
        return WebhookResult(400, "invalid signature")
    try:
        event = json.loads(text)
        name = event["event"]
        payload = event["payload"]
    except (ValueError, KeyError, TypeError):
        logger.warning("razorpay webhook with an unreadable body ignored")
        return WebhookResult(400, "unreadable body")
    try:
        if name in CREDIT_EVENTS:
            return _webhook_payment(name, payment_from(payload["payment"]["entity"]))
        if name == "refund.processed":
            return _webhook_refund(refund_from(payload["refund"]["entity"]))
    except (KeyError, TypeError, ValueError):
        logger.warning("razorpay webhook %s without the expected entity ignored", name)
        return WebhookResult(400, "missing entity")
    logger.info("razorpay webhook %s not used", name)
    return WebhookResult(200, "not used")


def _webhook_payment(name: str, reported) -> WebhookResult:
    details = {"event": name, "order": reported.order_id, "payment": reported.id}
    payment = payment_for_order(order_id=reported.order_id) if reported.order_id else None
    if payment is None:
        payment_ignore_record(payment=None, reason="unknown order", details=details, actor=WEBHOOK_ACTOR)
        return WebhookResult(200, "unknown order")
    if reported.status != "captured":
        payment_ignore_record(payment=payment, reason=f"status {reported.status}", details=details, actor=WEBHOOK_ACTOR)
        return WebhookResult(200, "not captured")
    payment, outcome, why = _credit(payment, reported, actor=WEBHOOK_ACTOR, via=f"webhook {name}")
    if outcome is Outcome.MISMATCH:
        payment_ignore_record(payment=payment, reason=why, details=details, actor=WEBHOOK_ACTOR)
    return WebhookResult(200, outcome.value)


@transaction.atomic
def _webhook_refund(reported) -> WebhookResult:
    refund = Refund.objects.filter(gateway_refund_id=reported.id).first()
    if refund is None:
        details = {"event": "refund.processed", "refund": reported.id, "payment": reported.payment_id}
        payment_ignore_record(payment=None, reason="unknown refund", details=details, actor=WEBHOOK_ACTOR)
        return WebhookResult(200, "unknown refund")
    updated = Refund.objects.filter(pk=refund.pk, status=RefundStatus.PENDING).update(
        status=RefundStatus.PROCESSED, processed_at=timezone.now()
    )
    if updated:
        audit.record(
            actor=WEBHOOK_ACTOR,
            action="refund.processed",
            target=refund,
            project=refund.project_id,
            details={"refund": reported.id, "amount": str(refund.amount)},
        )
    return WebhookResult(200, "processed" if updated else "already")
