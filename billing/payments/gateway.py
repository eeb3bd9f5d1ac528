"""Razorpay through its official SDK, behind a small typed wrapper.

Plain data in and out (``Order``, ``GatewayPayment``, ``GatewayRefund``),
amounts in paise as the API speaks them, and two errors: ``GatewayRefused``
(Razorpay answered no: bad request, unknown id) and ``GatewayUnavailable``
(no answer, a server error). Signature checks use the SDK's own utility
unchanged. No Django models here; the caller passes the keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import razorpay
import requests
from razorpay.errors import BadRequestError, GatewayError, ServerError, SignatureVerificationError

DEFAULT_BASE_URL = "https://api.razorpay.com"
TIMEOUT_SECONDS = 15


class GatewayRefused(Exception):
    """Razorpay refused the request (its message is kept)."""


class GatewayUnavailable(Exception):
    """Razorpay could not be reached or failed; try again later."""


@dataclass(frozen=True)
class Keys:
    key_id: str
    key_secret: str
    webhook_secret: str
    base_url: str = DEFAULT_BASE_URL

    @property
    def complete(self) -> bool:
        return bool(self.key_id and self.key_secret)


@dataclass(frozen=True)
class Order:
    id: str
    amount: int  # paise
    currency: str
    receipt: str
    status: str


@dataclass(frozen=True)
class GatewayPayment:
    id: str
    order_id: str
    amount: int  # paise
    currency: str
    status: str  # created, authorized, captured, refunded, failed
    method: str = ""
    email: str = ""


@dataclass(frozen=True)
class GatewayRefund:
    id: str
    payment_id: str
    amount: int  # paise
    status: str  # pending, processed, failed


def to_paise(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def from_paise(paise: int) -> Decimal:
    return (Decimal(int(paise)) / 100).quantize(Decimal("0.01"))


def payment_from(entity: dict) -> GatewayPayment:
    """A payment entity as the API and webhooks give it."""
    return GatewayPayment(
        id=str(entity["id"]),
        order_id=str(entity.get("order_id") or ""),
        amount=int(entity["amount"]),
        currency=str(entity["currency"]),
        status=str(entity["status"]),
        method=str(entity.get("method") or ""),
        email=str(entity.get("email") or ""),
    )


def refund_from(entity: dict) -> GatewayRefund:
    return GatewayRefund(
        id=str(entity["id"]),
        payment_id=str(entity.get("payment_id") or ""),
        amount=int(entity["amount"]),
        status=str(entity.get("status") or ""),
    )


class Gateway:
    """One Razorpay account (its keys); every call has a timeout."""

    def __init__(self, keys: Keys):
        self.keys = keys
        self.client = razorpay.Client(auth=(keys.key_id, keys.key_secret), base_url=keys.base_url.rstrip("/"))

    def _call(self, method, *args):
        try:
            return method(*args, timeout=TIMEOUT_SECONDS)
        except BadRequestError as exc:
            raise GatewayRefused(str(exc) or "Razorpay refused the request.") from exc
        except (GatewayError, ServerError, requests.RequestException, ValueError) as exc:
            raise GatewayUnavailable(f"Razorpay did not answer properly: {exc}") from exc

    def order_create(self, *, amount: int, currency: str, receipt: str, notes: dict) -> Order:
        body = {"amount": amount, "currency": currency, "receipt": receipt, "notes": notes}
        data = self._call(self.client.order.create, body)
        return Order(
            id=data["id"],
            amount=int(data["amount"]),
            currency=data["currency"],
            receipt=data.get("receipt") or "",
            status=data["status"],
        )

    def payment_fetch(self, payment_id: str) -> GatewayPayment:
        return payment_from(self._call(self.client.payment.fetch, payment_id))

    def refund_create(self, *, payment_id: str, amount: int, receipt: str, notes: dict) -> GatewayRefund:
        body = {"amount": amount, "receipt": receipt, "notes": notes}
        return refund_from(self._call(self.client.payment.refund, payment_id, body))

    def payment_signature_valid(self, *, order_id: str, payment_id: str, signature: str) -> bool:
        """Checkout's ``razorpay_signature``: HMAC of ``order_id|payment_id`` with the key secret."""
        params = {"razorpay_order_id": order_id, "razorpay_payment_id": payment_id, "razorpay_signature": signature}
        if not signature.isascii():  # hmac.compare_digest raises TypeError on non-ASCII text
            return False
        try:
            return bool(self.client.utility.verify_payment_signature(params))
        except SignatureVerificationError:
            return False

    def webhook_signature_valid(self, *, body: str, signature: str) -> bool:
        """``X-Razorpay-Signature``: HMAC of the raw body with the webhook secret."""
        if not self.keys.webhook_secret or not signature.isascii():  # see payment_signature_valid
            return False
        try:
            return bool(self.client.utility.verify_webhook_signature(body, signature, self.keys.webhook_secret))
        except SignatureVerificationError:
            return False
