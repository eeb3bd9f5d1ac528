"""Gapless document numbers, allocated under a row lock.

The series row (one per prefix and financial year) is locked with
``SELECT ... FOR UPDATE`` inside the transaction that creates the document,
so a rolled-back document gives its number back and concurrent issuers queue.
"""

from datetime import date

from django.db import transaction

from controlplane.errors import Conflict

from ..gst import financial_year
from ..models import DocumentSeries

MAX_NUMBER_LENGTH = 16
SEQUENCE_DIGITS = 6


def document_number(prefix: str, fy: str, sequence: int) -> str:
    """``INV``, ``2025-26``, 123 → ``INV/2526/000123``."""
    return f"{prefix}/{fy[2:4]}{fy[5:7]}/{sequence:0{SEQUENCE_DIGITS}d}"


def number_allocate(*, kind: str, prefix: str, day: date) -> tuple[DocumentSeries, int, str]:
    """Take the next number of the series; the caller's transaction keeps it."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("number_allocate must run inside the transaction that creates the document.")
    fy = financial_year(day)
    locked = DocumentSeries.objects.select_for_update().filter(prefix=prefix, financial_year=fy)
    series = locked.first()
    if series is None:  # the first document of the year: create the series (once, even when racing)
        DocumentSeries.objects.get_or_create(prefix=prefix, financial_year=fy, defaults={"kind": kind})
        series = locked.get()
    if series.kind != kind:
        raise Conflict(f"The prefix {prefix} is already used for {series.get_kind_display()} numbers in {fy}.")
    sequence = series.last_number + 1
    number = document_number(prefix, fy, sequence)
    if sequence >= 10**SEQUENCE_DIGITS or len(number) > MAX_NUMBER_LENGTH:
        raise Conflict(f"The {prefix} series of {fy} is full; configure a new prefix in Billing settings.")
    DocumentSeries.objects.filter(pk=series.pk).update(last_number=sequence)
    return series, sequence, number
