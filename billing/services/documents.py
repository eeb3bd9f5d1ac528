"""What every GST document is made of: a gapless number, the parties and tax
treatment as they are at issue (or copied from the invoice a credit note
refers to), and totals.

Numbers: the series row (one per prefix and financial year) is locked by the
``UPDATE`` that takes the next number (one statement, ``RETURNING`` it) inside
the transaction that creates the document, so a rolled-back document gives its
number back and concurrent issuers queue.
"""

from datetime import date, datetime

from django.db import connection, transaction

from controlplane.errors import Conflict

from ..gst import MAX_NUMBER_LENGTH, SEQUENCE_DIGITS, Totals, Treatment, document_number, financial_year
from ..models import DocumentSeries
from ..periods import local_date
from .config import customer_snapshot, supplier_snapshot

PARTY_FIELDS = (
    "supplier",
    "customer",
    "place_of_supply",
    "place_of_supply_name",
    "supply_type",
    "regime",
    "state_tax_label",
    "endorsement",
)


def number_allocate(*, kind: str, prefix: str, day: date) -> tuple[DocumentSeries, int, str]:
    """Take the next number of the series; the caller's transaction keeps it."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("number_allocate must run inside the transaction that creates the document.")
    fy = financial_year(day)
    if len(document_number(prefix, fy, 1)) > MAX_NUMBER_LENGTH:
        raise Conflict(f"The {prefix} series of {fy} is full; configure a new prefix in Billing settings.")
    taken = _series_next(kind=kind, prefix=prefix, fy=fy)
    if taken is None:  # no such series yet, or another kind's, or full: nothing was changed
        locked = DocumentSeries.objects.select_for_update().filter(prefix=prefix, financial_year=fy)
        series = locked.first()
        if series is None:  # the first document of the year: create the series (once, even when racing)
            DocumentSeries.objects.get_or_create(prefix=prefix, financial_year=fy, defaults={"kind": kind})
            series = locked.get()
        if series.kind != kind:
            raise Conflict(f"The prefix {prefix} is already used for {series.get_kind_display()} numbers in {fy}.")
        taken = _series_next(kind=kind, prefix=prefix, fy=fy)
        if taken is None:
            raise Conflict(f"The {prefix} series of {fy} is full; configure a new prefix in Billing settings.")
    series_id, sequence = taken
    series = DocumentSeries(pk=series_id, kind=kind, prefix=prefix, financial_year=fy, last_number=sequence)
    return series, sequence, document_number(prefix, fy, sequence)


def _series_next(*, kind: str, prefix: str, fy: str) -> tuple[int, int] | None:
    """Add one to the series' last number in one statement, which locks its row until the
    transaction ends (concurrent issuers queue and then count on from the new value): the
    series id and the number taken. None, changing nothing, when the series does not exist,
    is of another kind or is full."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {DocumentSeries._meta.db_table} SET last_number = last_number + 1 "
            "WHERE prefix = %s AND financial_year = %s AND kind = %s AND last_number < %s "
            "RETURNING id, last_number",
            [prefix, fy, kind, 10**SEQUENCE_DIGITS - 1],
        )
        return cursor.fetchone()


def parties(*, settings, project, profile, treatment: Treatment, registration=None) -> dict:
    """Supplier (the principal registration or ``registration``), customer and
    tax treatment as they are now (the snapshot)."""
    return {
        "supplier": supplier_snapshot(settings, registration),
        "customer": customer_snapshot(project, profile),
        "place_of_supply": treatment.place_of_supply,
        "place_of_supply_name": treatment.place_of_supply_name,
        "supply_type": treatment.supply_type,
        "regime": treatment.regime,
        "state_tax_label": treatment.state_tax_label,
        "endorsement": treatment.endorsement,
    }


def parties_of(document) -> dict:
    """The same parties and treatment as an issued document."""
    return {name: getattr(document, name) for name in PARTY_FIELDS}


def actor_name(actor) -> str:
    if actor is None:
        return "system"
    return actor if isinstance(actor, str) else getattr(actor, "email", str(actor))


def numbered(*, kind: str, prefix: str, at: datetime, actor) -> dict:
    """Number (allocated now, kept by the caller's transaction), date and issuer."""
    day = local_date(at)
    series, sequence, number = number_allocate(kind=kind, prefix=prefix, day=day)
    return {
        "number": number,
        "series": series,
        "sequence": sequence,
        "financial_year": series.financial_year,
        "date": day,
        "issued_at": at,
        "issued_by": actor_name(actor),
    }


def totals_fields(totals: Totals) -> dict:
    return {
        "taxable_total": totals.taxable,
        "cgst_total": totals.cgst,
        "sgst_total": totals.sgst,
        "igst_total": totals.igst,
        "tax_total": totals.tax,
        "round_off": totals.round_off,
        "total": totals.total,
    }
