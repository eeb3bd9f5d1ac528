"""Income-tax TDS a business customer deducted from what it paid for an
invoice (sections 194C, 194J, 194I of the Income-tax Act).

The customer pays the invoice less the TDS and pays the TDS to the
government on the operator's account, so the deduction settles that part of
the invoice: it is credited to the project's wallet (entry kind ``tds``)
with the invoice it belongs to. TDS is on the value before GST (CBDT
Circular 23/2017) net of credit notes, at most the section's rate, rounded to
the rupee (s.288B). The Form 16A certificate usually comes a quarter later:
it is recorded then, against the deduction.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

import audit
from controlplane.errors import Conflict, InvalidInput

from ..choices import TDS_MAX_RATE, EntryKind, TdsSection
from ..models import CreditNote, Invoice, TdsCertificate, TdsDeduction
from ..money import ZERO, format_inr, rupees
from ..periods import local_date
from .documents import actor_name
from .ledger import amount_parse, entry_post, wallet_lock
from .suspension import suspension_lift_if_paid

_CERTIFICATE = re.compile(r"^[A-Z0-9]{1,20}$")


def tds_base(*, invoice: Invoice) -> Decimal:
    """The value TDS is deducted on: the invoice's taxable value less its credit notes'."""
    credited = CreditNote.objects.filter(invoice=invoice).aggregate(total=Sum("taxable_total"))["total"] or ZERO
    return invoice.taxable_total - credited


def _rate(section: str, rate) -> Decimal:
    if section not in TdsSection.values:
        raise InvalidInput(
            f"Choose the section: {', '.join(TdsSection.values)}.", fields={"section": "Not a TDS section here."}
        )
    try:
        value = Decimal(str(rate))
    except (InvalidOperation, ValueError):
        raise InvalidInput("The TDS rate is a percentage such as 2 or 10.", fields={"rate": "Not a number."}) from None
    highest = Decimal(TDS_MAX_RATE[section])
    if not value.is_finite() or value <= 0 or value > highest or value != value.quantize(Decimal("0.01")):
        raise InvalidInput(
            f"TDS under {section} is at most {highest}% (two decimals at most).",
            fields={"rate": f"Under {section}: more than 0, at most {highest}%."},
        )
    return value


@transaction.atomic
def tds_record(
    *,
    invoice: Invoice,
    section: str,
    rate,
    amount,
    deducted_on: date,
    actor,
    certificate_number: str = "",
    certificate_date: date | None = None,
    at: datetime | None = None,
) -> TdsDeduction:
    """Record TDS the customer deducted from its payment of ``invoice`` and
    credit it to the project's wallet (optionally with its certificate)."""
    at = at or timezone.now()
    rate = _rate(section, rate)
    amount = amount_parse(amount)
    if amount <= 0:
        raise InvalidInput("Record a positive amount of TDS.", fields={"amount": "Must be positive."})
    if not isinstance(deducted_on, date) or deducted_on > local_date(at):
        raise InvalidInput("TDS cannot be deducted in the future.", fields={"deducted_on": "A date up to today."})
    wallet = wallet_lock(project_id=invoice.project_id)
    base = tds_base(invoice=invoice)
    allowed = rupees(base * rate / 100)
    before = TdsDeduction.objects.filter(invoice=invoice).aggregate(total=Sum("amount"))["total"] or ZERO
    if before + amount > allowed:
        raise Conflict(
            f"TDS at {rate}% on ₹{format_inr(base)} (invoice {invoice.number}'s value before GST, net of credit "
            f"notes) is at most ₹{format_inr(allowed)}; ₹{format_inr(before)} is recorded already."
        )
    entry = entry_post(
        wallet=wallet,
        kind=EntryKind.TDS,
        amount=amount,
        description=f"Income-tax TDS u/s {section} by the customer on invoice {invoice.number}",
        actor=actor,
        invoice=invoice,
        at=at,
    )
    deduction = TdsDeduction.objects.create(
        invoice=invoice,
        project_id=invoice.project_id,
        section=section,
        rate=rate,
        amount=amount,
        deducted_on=deducted_on,
        entry=entry,
        recorded_at=at,
        recorded_by=actor_name(actor),
    )
    suspension_lift_if_paid(wallet=wallet, actor=actor)
    audit.record(
        actor=actor,
        action="tds.recorded",
        target=invoice,
        project=invoice.project_id,
        details={"invoice": invoice.number, "section": section, "rate": str(rate), "amount": str(amount)},
    )
    if certificate_number or certificate_date:
        tds_certificate_record(
            deduction=deduction, number=certificate_number, issued_on=certificate_date, actor=actor, at=at
        )
    return deduction


@transaction.atomic
def tds_certificate_record(
    *, deduction: TdsDeduction, number: str, issued_on: date | None, actor, at: datetime | None = None
) -> TdsCertificate:
    """The Form 16A certificate of a deduction (once)."""
    at = at or timezone.now()
    number = (number or "").strip().upper()
    if not _CERTIFICATE.match(number):
        raise InvalidInput(
            "The Form 16A certificate number is letters and digits (up to 20).",
            fields={"certificate_number": "Letters and digits."},
        )
    if not isinstance(issued_on, date) or issued_on > local_date(at) or issued_on < deduction.deducted_on:
        raise InvalidInput(
            "The certificate is dated on or after the deduction and not in the future.",
            fields={"certificate_date": "Between the deduction and today."},
        )
    TdsDeduction.objects.select_for_update(no_key=True).filter(pk=deduction.pk).first()
    if TdsCertificate.objects.filter(deduction=deduction).exists():
        raise Conflict(f"The certificate of this deduction is recorded already ({deduction.certificate.number}).")
    certificate = TdsCertificate.objects.create(
        deduction=deduction, number=number, issued_on=issued_on, recorded_at=at, recorded_by=actor_name(actor)
    )
    audit.record(
        actor=actor,
        action="tds.certificate_recorded",
        target=deduction.invoice,
        project=deduction.project_id,
        details={"invoice": deduction.invoice.number, "certificate": number, "amount": str(deduction.amount)},
    )
    return certificate
