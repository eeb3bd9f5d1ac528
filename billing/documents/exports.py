"""CSV export of the GST documents of a period (for the accountant, GSTR-1)."""

from __future__ import annotations

import csv
import io
from datetime import date

from ..models import CreditNote, Invoice, ReceiptVoucher

COLUMNS = [
    "type",
    "number",
    "date",
    "financial_year",
    "project",
    "customer_name",
    "customer_gstin",
    "place_of_supply",
    "supply_type",
    "reverse_charge",
    "taxable",
    "cgst",
    "sgst_utgst",
    "igst",
    "round_off",
    "total",
    "reference",
]
AMOUNTS = ("taxable_total", "cgst_total", "sgst_total", "igst_total", "round_off", "total")


def amount(value) -> str:
    """Two decimals, never ``-0.00`` (a negated zero is still zero)."""
    return f"{value:.2f}" if value else "0.00"


def _row(kind: str, doc, sign: int, reference: str = "") -> list:
    amounts = [amount(sign * getattr(doc, name)) for name in AMOUNTS]
    return [
        kind,
        doc.number,
        doc.date.isoformat(),
        doc.financial_year,
        doc.project.slug,
        doc.customer.get("legal_name", ""),
        doc.customer.get("gstin", ""),
        f"{doc.place_of_supply}-{doc.place_of_supply_name}",
        doc.supply_type,
        "Y" if doc.reverse_charge else "N",
        *amounts,
        reference,
    ]


def documents_csv(*, start: date, end: date) -> str:
    """Invoices, credit notes (negative) and receipt vouchers dated
    ``start``..``end`` inclusive, in date and number order."""
    window = {"date__gte": start, "date__lte": end}
    rows = [_row("invoice", doc, 1) for doc in Invoice.objects.filter(**window).select_related("project")]
    rows += [
        _row("credit_note", doc, -1, doc.invoice.number)
        for doc in CreditNote.objects.filter(**window).select_related("project", "invoice")
    ]
    rows += [_row("receipt", doc, 1) for doc in ReceiptVoucher.objects.filter(**window).select_related("project")]
    rows.sort(key=lambda row: (row[2], row[0] != "invoice", row[1]))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return out.getvalue()
