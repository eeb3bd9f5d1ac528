"""Bank transfer / UPI without a gateway: the customer pays the operator's
account or UPI id, then reports the UTR; the payment stays pending until an
operator confirms it (one, several, or from a bank-statement CSV) and is then
credited through ``credit.payment_credit`` like any other payment."""

from __future__ import annotations

import csv
import io
import re
import secrets
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction

import audit
from accounts.models import Project
from controlplane.errors import Conflict, InvalidInput

from ..choices import PaymentMethod, PaymentStatus
from ..models import Payment
from ..money import format_inr
from .credit import Outcome, payment_credit
from .razorpay import amount_check, profile_require
from .selectors import open_transfers, payment_settings_get

UTR_PATTERN = re.compile(r"^[A-Z0-9]{6,40}$")
PROJECT_REFERENCE = re.compile(r"CPW(\d{6})")
MAX_STATEMENT_BYTES = 2_000_000


def utr_clean(value: str) -> str:
    utr = re.sub(r"[\s-]", "", (value or "").upper())
    if not UTR_PATTERN.match(utr):
        message = "The UTR / UPI reference is 6 to 40 letters and digits, as your bank shows it."
        raise InvalidInput(message, fields={"utr": message})
    return utr


@transaction.atomic
def transfer_report(*, project: Project, amount, utr: str, actor, request=None) -> Payment:
    """The customer says they paid ``amount`` with this UTR: pending until confirmed."""
    settings = payment_settings_get()
    if not settings.bank_transfer_enabled:
        raise Conflict("Bank transfer is not offered; pay online or ask the operator.")
    amount = amount_check(amount, settings=settings)
    profile_require(project)
    utr = utr_clean(utr)
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                project=project,
                method=PaymentMethod.BANK_TRANSFER,
                status=PaymentStatus.PENDING,
                amount=amount,
                reference=f"TRF{project.pk}-{secrets.token_hex(6).upper()}",
                utr=utr,
                created_by=actor if getattr(actor, "pk", None) else None,
            )
    except IntegrityError:
        raise Conflict(f"UTR {utr} has already been reported.", fields={"utr": "Already reported."}) from None
    audit.record(
        actor=actor,
        action="payment.transfer_reported",
        target=payment,
        project=project,
        details={"amount": str(amount), "utr": utr, "reference": payment.reference},
        request=request,
    )
    return payment


def transfer_confirm(*, payment: Payment, actor, via: str = "operator", request=None) -> bool:
    """An operator saw the money: credit it (once). True when credited now."""
    if payment.method != PaymentMethod.BANK_TRANSFER:
        raise Conflict("Only bank transfers are confirmed by hand; Razorpay payments confirm themselves.")
    _, outcome, _ = payment_credit(
        payment_pk=payment.pk, amount=payment.amount, currency=payment.currency, actor=actor, via=via, request=request
    )
    return outcome is Outcome.CREDITED


@transaction.atomic
def transfer_reject(*, payment: Payment, actor, reason: str, request=None) -> None:
    """No such money arrived: the report is closed with the reason (shown to the customer)."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Say why: the customer sees it.", fields={"reason": "Required."})
    updated = Payment.objects.filter(
        pk=payment.pk, method=PaymentMethod.BANK_TRANSFER, status=PaymentStatus.PENDING
    ).update(status=PaymentStatus.REJECTED, note=reason[:500])
    if not updated:
        raise Conflict(f"{payment.reference} is not a pending transfer.")
    audit.record(
        actor=actor,
        action="payment.transfer_rejected",
        target=payment,
        project=payment.project_id,
        details={"utr": payment.utr, "amount": str(payment.amount), "reason": reason},
        request=request,
    )


@dataclass
class StatementResult:
    confirmed: list[str] = field(default_factory=list)  # payment references credited now
    already: list[str] = field(default_factory=list)  # matched a payment credited before
    unmatched: list[str] = field(default_factory=list)  # credit rows nobody reported (line: why)


COLUMNS = {
    "amount": ("credit", "deposit", "deposits", "credit amount", "amount", "cr"),
    "text": ("narration", "description", "remarks", "particulars", "details", "transaction details"),
    "reference": ("utr", "reference", "ref no", "ref no.", "cheque/ref no", "chq/ref no", "reference no"),
}


def _column(header: list[str], names) -> int | None:
    lowered = [name.strip().lower() for name in header]
    return next((lowered.index(name) for name in names if name in lowered), None)


def _amount(cell: str) -> Decimal | None:
    try:
        value = Decimal(cell.replace(",", "").replace("₹", "").strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() and value > 0 else None


def transfer_statement_import(*, data: bytes, actor, request=None) -> StatementResult:
    """Match a bank statement (CSV with a header: a credit/amount column, a
    narration column, optionally a UTR/reference column) against the pending
    transfers: a row matches a transfer whose UTR appears in the row, or the
    oldest pending transfer of the project named by a ``CPW…`` reference, with
    the same amount. Matches are credited (each in its own transaction);
    everything else is reported back, nothing guessed."""
    if len(data) > MAX_STATEMENT_BYTES:
        raise InvalidInput("The statement is larger than 2 MB; split it.", fields={"statement": "Too large."})
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"Not a CSV file: {exc}", fields={"statement": "Not a CSV file."}) from None
    header = rows[0] if rows else []
    amount_at, text_at, ref_at = (_column(header, COLUMNS[name]) for name in ("amount", "text", "reference"))
    if amount_at is None or (text_at is None and ref_at is None):
        raise InvalidInput(
            "The statement needs a header with a Credit (or Amount) column and a Narration or UTR column.",
            fields={"statement": "Columns not found."},
        )
    result = StatementResult()
    pending = list(open_transfers())
    for number, row in enumerate(rows[1:], start=2):
        if len(row) <= max(i for i in (amount_at, text_at, ref_at) if i is not None):
            continue
        amount = _amount(row[amount_at])
        if amount is None:
            continue  # a debit or a blank line
        text = " ".join(row[i] for i in (text_at, ref_at) if i is not None).upper()
        match = _statement_match(text, amount, pending)
        if match is None:
            result.unmatched.append(f"line {number}: ₹{format_inr(amount)} {text[:80]}")
            continue
        pending.remove(match)
        credited = transfer_confirm(payment=match, actor=actor, via="statement", request=request)
        (result.confirmed if credited else result.already).append(match.reference)
    return result


def _statement_match(text: str, amount: Decimal, pending: list[Payment]) -> Payment | None:
    compact = re.sub(r"[\s-]", "", text)
    by_utr = [p for p in pending if p.utr and p.utr in compact and p.amount == amount]
    if by_utr:
        return by_utr[0]
    projects = {int(pk) for pk in PROJECT_REFERENCE.findall(compact)}
    by_project = [p for p in pending if p.project_id in projects and p.amount == amount]
    return by_project[0] if by_project else None
