"""A small Razorpay API on loopback for the tests, speaking the documented
REST shapes the SDK uses here: orders (create, fetch), payments (fetch,
refund) and the error body. Hand-written (Razorpay's servers are not reachable
from this machine): faithful to https://razorpay.com/docs/api/ for these
endpoints only, and docs/BILLING.md says which behaviour was checked only
against it.

What Checkout would do in a browser is the test's ``pay(order_id)``: it
records a captured payment for the order and returns the three values the
Checkout handler gets, with ``razorpay_signature`` computed as Razorpay does
(HMAC-SHA256 of ``order_id|payment_id`` with the key secret). ``webhook(...)``
builds an event body and its ``X-Razorpay-Signature``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY_ID = "rzp_test_1DP5mmOlF5G5ag"
KEY_SECRET = "thisisafakesecretforthetests"
WEBHOOK_SECRET = "webhook-secret-of-the-tests"


def _id(prefix: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return f"{prefix}_" + "".join(secrets.choice(alphabet) for _ in range(14))


def sign(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


class FakeRazorpay:
    def __init__(self):
        self.orders: dict[str, dict] = {}
        self.payments: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeRazorpay:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- what Checkout and Razorpay's webhooks would do -------------------------------------------

    def pay(
        self, order_id: str, *, amount: int | None = None, currency: str | None = None, status="captured", method="upi"
    ) -> dict:
        """A customer pays the order in Checkout: the handler's three values."""
        order = self.orders[order_id]
        payment = {
            "id": _id("pay"),
            "entity": "payment",
            "amount": order["amount"] if amount is None else amount,
            "currency": currency or order["currency"],
            "status": status,
            "order_id": order_id,
            "invoice_id": None,
            "international": False,
            "method": method,
            "amount_refunded": 0,
            "refund_status": None,
            "captured": status == "captured",
            "description": "Wallet top-up",
            "card_id": None,
            "bank": None,
            "wallet": None,
            "vpa": "success@razorpay" if method == "upi" else None,
            "email": "customer@example.com",
            "contact": "+919000090000",
            "notes": [],
            "fee": 0,
            "tax": 0,
            "error_code": None,
            "error_description": None,
            "created_at": int(time.time()),
        }
        with self.lock:
            self.payments[payment["id"]] = payment
            if status == "captured":
                order.update(status="paid", amount_paid=payment["amount"], amount_due=0, attempts=order["attempts"] + 1)
        return {
            "razorpay_payment_id": payment["id"],
            "razorpay_order_id": order_id,
            "razorpay_signature": sign(KEY_SECRET, f"{order_id}|{payment['id']}"),
        }

    def webhook(
        self, event: str, *, payment_id: str | None = None, refund_id: str | None = None, secret: str = WEBHOOK_SECRET
    ) -> tuple[bytes, str]:
        """The body Razorpay posts for ``event`` and its X-Razorpay-Signature."""
        payload, contains = {}, []
        if refund_id:
            payload["refund"] = {"entity": self.refunds[refund_id]}
            contains.append("refund")
            payment_id = payment_id or self.refunds[refund_id]["payment_id"]
        if payment_id:
            payload["payment"] = {"entity": self.payments[payment_id]}
            contains.append("payment")
            if event == "order.paid":
                payload["order"] = {"entity": self.orders[self.payments[payment_id]["order_id"]]}
                contains.append("order")
        body = {
            "entity": "event",
            "account_id": "acc_BFQ7uQEaa7j2z7",
            "event": event,
            "contains": contains,
            "payload": payload,
            "created_at": int(time.time()),
        }
        raw = json.dumps(body).encode()
        return raw, sign(secret, raw.decode())

    # -- the REST API --------------------------------------------------------------------------------

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, description: str, field=None, code="BAD_REQUEST_ERROR"):
                error = {
                    "code": code,
                    "description": description,
                    "source": "business",
                    "step": "payment_initiation",
                    "reason": "input_validation_failed",
                    "metadata": {},
                    "field": field,
                }
                self._send(status, {"error": error})

            def _authorised(self) -> bool:
                expected = "Basic " + base64.b64encode(f"{KEY_ID}:{KEY_SECRET}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self._error(401, "The api key provided is invalid")
                    return False
                return True

            def _body(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def do_GET(self):
                fake.requests.append(("GET", self.path))
                if not self._authorised():
                    return
                path = self.path.split("?")[0]
                if m := re.fullmatch(r"/v1/orders/([\w]+)", path):
                    order = fake.orders.get(m[1])
                    return self._send(200, order) if order else self._error(400, "The id provided does not exist")
                if m := re.fullmatch(r"/v1/payments/([\w]+)", path):
                    payment = fake.payments.get(m[1])
                    return self._send(200, payment) if payment else self._error(400, "The id provided does not exist")
                self._error(404, "The requested URL was not found on the server.", code="NOT_FOUND")

            def do_POST(self):
                fake.requests.append(("POST", self.path))
                if not self._authorised():
                    return
                body = self._body()
                if self.path == "/v1/orders":
                    return self._order_create(body)
                if m := re.fullmatch(r"/v1/payments/([\w]+)/refund", self.path):
                    return self._refund(m[1], body)
                self._error(404, "The requested URL was not found on the server.", code="NOT_FOUND")

            def _order_create(self, body):
                amount = body.get("amount")
                if not isinstance(amount, int) or amount < 100:
                    return self._error(400, "The amount must be atleast INR 1.00", field="amount")
                if body.get("currency") != "INR":
                    return self._error(400, "Currency is not supported", field="currency")
                if len(body.get("receipt") or "") > 40:
                    return self._error(400, "The receipt may not be greater than 40 characters.", field="receipt")
                order = {
                    "id": _id("order"),
                    "entity": "order",
                    "amount": amount,
                    "amount_paid": 0,
                    "amount_due": amount,
                    "currency": "INR",
                    "receipt": body.get("receipt"),
                    "offer_id": None,
                    "status": "created",
                    "attempts": 0,
                    "notes": body.get("notes") or [],
                    "created_at": int(time.time()),
                }
                fake.orders[order["id"]] = order
                self._send(200, order)

            def _refund(self, payment_id, body):
                with fake.lock:
                    payment = fake.payments.get(payment_id)
                    if payment is None:
                        return self._error(400, "The id provided does not exist")
                    if payment["status"] not in ("captured", "refunded"):
                        return self._error(400, "The payment has not been captured")
                    amount = body.get("amount", payment["amount"] - payment["amount_refunded"])
                    if not isinstance(amount, int) or amount < 100:
                        return self._error(400, "The amount must be atleast INR 1.00", field="amount")
                    if amount > payment["amount"] - payment["amount_refunded"]:
                        return self._error(400, "The total refund amount is greater than the refund payment amount")
                    refund = {
                        "id": _id("rfnd"),
                        "entity": "refund",
                        "amount": amount,
                        "currency": payment["currency"],
                        "payment_id": payment_id,
                        "notes": body.get("notes") or [],
                        "receipt": body.get("receipt"),
                        "acquirer_data": {"arn": None},
                        "created_at": int(time.time()),
                        "batch_id": None,
                        "status": "processed" if body.get("speed") == "instant" else "pending",
                        "speed_processed": "normal",
                        "speed_requested": body.get("speed", "normal"),
                    }
                    payment["amount_refunded"] += amount
                    payment["refund_status"] = "full" if payment["amount_refunded"] == payment["amount"] else "partial"
                    if payment["refund_status"] == "full":
                        payment["status"] = "refunded"
                    fake.refunds[refund["id"]] = refund
                self._send(200, refund)

        return Handler

    def process_refund(self, refund_id: str) -> None:
        """Razorpay settles the refund with the bank (what precedes refund.processed)."""
        self.refunds[refund_id]["status"] = "processed"
