"""GSTR-1 for one month: the JSON the GST portal's offline tool imports, per
section, and CSVs with one row per document, SAC and rate.

Sections (GSTR-1 tables):
- ``b2b`` (4A, 6B): invoices to registered recipients, SEZ ones typed SEWP/SEWOP;
- ``b2cl`` (5): inter-state invoices to unregistered recipients above the
  B2CL limit (₹1,00,000 from 1 August 2024, ₹2,50,000 before);
- ``b2cs`` (7): all other unregistered supplies, net of their credit notes,
  per supply type, place of supply and rate;
- ``exp`` (6A): exports, with (WPAY) or without (WOPAY) IGST;
- ``cdnr`` (9B): credit notes to registered recipients; ``cdnur`` (9B):
  credit notes on B2CL invoices and exports;
- ``hsn`` (12): per SAC and rate, net of credit notes, split B2B / B2C;
- ``doc_issue`` (13): number ranges of invoices, credit notes, receipt and
  refund vouchers.

Amounts are computed in Decimal from the documents' own lines; JSON numbers
are those Decimals written with two decimals. Advances (tables 11A/11B: tax
on receipt vouchers and its adjustment) are not produced: see docs/BILLING.md.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.db.models import Count, Max, Min, Sum

from controlplane.errors import InvalidInput

from ..choices import Regime, SupplyType
from ..gst import STATES
from ..models import CreditNote, CreditNoteLine, Invoice, InvoiceLine, ReceiptVoucher, RefundVoucher
from ..money import ZERO
from ..periods import next_month
from ..selectors import billing_settings_get, supplier_gstins

B2CL_LIMIT_FROM_AUG_2024 = Decimal("100000")
B2CL_LIMIT_BEFORE = Decimal("250000")
SEZ_TYPES = {SupplyType.SEZWP: "SEWP", SupplyType.SEZWOP: "SEWOP"}
EXPORT_TYPES = {SupplyType.EXPWP: "WPAY", SupplyType.EXPWOP: "WOPAY"}
REGISTERED = {SupplyType.B2B, SupplyType.SEZWP, SupplyType.SEZWOP}
DOC_TYPES = [
    (1, "Invoices for outward supply", Invoice),
    (5, "Credit Note", CreditNote),
    (6, "Receipt voucher", ReceiptVoucher),
    (8, "Refund voucher", RefundVoucher),
]
CSV_COLUMNS = [
    "section",
    "document",
    "number",
    "date",
    "recipient_gstin",
    "recipient_name",
    "place_of_supply",
    "supply_type",
    "sac",
    "rate",
    "taxable",
    "igst",
    "cgst",
    "sgst_utgst",
    "cess",
    "document_value",
    "against_invoice",
    "against_invoice_date",
]


def b2cl_limit(day: date) -> Decimal:
    return B2CL_LIMIT_FROM_AUG_2024 if day >= date(2024, 8, 1) else B2CL_LIMIT_BEFORE


def _section(doc: Invoice) -> str:
    """The GSTR-1 section of an invoice (a credit note follows its invoice's)."""
    if doc.supply_type in REGISTERED:
        return "b2b"
    if doc.supply_type in EXPORT_TYPES:
        return "exp"
    if doc.regime == Regime.INTER and doc.total > b2cl_limit(doc.date):
        return "b2cl"
    return "b2cs"


def _dt(day: date) -> str:
    return f"{day:%d-%m-%Y}"


def _items(lines) -> dict[tuple[str, Decimal], dict[str, Decimal]]:
    """Per (SAC, rate): taxable value and tax heads."""
    items: dict[tuple[str, Decimal], dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    rows = lines.values("sac_code", "gst_rate").annotate(
        txval=Sum("taxable"), iamt=Sum("igst"), camt=Sum("cgst"), samt=Sum("sgst")
    )
    for row in rows:
        item = items[(row["sac_code"], row["gst_rate"])]
        for head in ("txval", "iamt", "camt", "samt"):
            item[head] += row[head]
    return items


def _itms(items) -> list[dict]:
    by_rate: dict[Decimal, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for (_, rate), item in items.items():
        for head, value in item.items():
            by_rate[rate][head] += value
    return [
        {"num": index, "itm_det": {"rt": rate, **dict(heads), "csamt": ZERO}}
        for index, (rate, heads) in enumerate(sorted(by_rate.items()), start=1)
    ]


class Gstr1:
    """The month's GSTR-1, built once from the database; ``sections`` is the
    JSON (Decimals), ``rows`` the CSV rows."""

    def __init__(self, month: date, gstin: str | None = None):
        self.month = month.replace(day=1)
        principal = billing_settings_get().gstin
        self.gstin = gstin or principal
        if self.gstin not in supplier_gstins():
            raise InvalidInput(f"{self.gstin} is not one of the operator's GSTINs.", fields={"gstin": "Unknown."})
        window = {"date__gte": self.month, "date__lt": next_month(self.month)}
        mine = {**window, "supplier__gstin": self.gstin}
        self.invoices = list(Invoice.objects.filter(**mine).order_by("date", "number"))
        self.notes = list(CreditNote.objects.filter(**mine).select_related("invoice").order_by("date", "number"))
        self.window = mine
        self.rows: list[dict] = []
        self.sections = self._build()

    def _row(self, section: str, kind: str, doc, items, invoice=None) -> None:
        for (sac, rate), heads in sorted(items.items()):
            self.rows.append(
                {
                    "section": section,
                    "document": kind,
                    "number": doc.number,
                    "date": doc.date.isoformat(),
                    "recipient_gstin": doc.customer.get("gstin", ""),
                    "recipient_name": doc.customer.get("legal_name", ""),
                    "place_of_supply": f"{doc.place_of_supply}-{STATES.get(doc.place_of_supply, '')}",
                    "supply_type": doc.supply_type,
                    "sac": sac,
                    "rate": rate,
                    "taxable": heads["txval"],
                    "igst": heads["iamt"],
                    "cgst": heads["camt"],
                    "sgst_utgst": heads["samt"],
                    "cess": ZERO,
                    "document_value": doc.total,
                    "against_invoice": invoice.number if invoice else "",
                    "against_invoice_date": invoice.date.isoformat() if invoice else "",
                }
            )

    def _build(self) -> dict:
        b2b, b2cl, exp, cdnr = defaultdict(list), defaultdict(list), defaultdict(list), defaultdict(list)
        b2cs: dict[tuple, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
        cdnur, hsn = [], {"hsn_b2b": defaultdict(_zero_heads), "hsn_b2c": defaultdict(_zero_heads)}
        for doc in self.invoices:
            section, items = _section(doc), _items(InvoiceLine.objects.filter(invoice=doc))
            self._row(section, "invoice", doc, items)
            _add_hsn(hsn, doc, items, 1)
            head = {"inum": doc.number, "idt": _dt(doc.date), "val": doc.total, "itms": _itms(items)}
            if section == "b2b":
                b2b[doc.customer["gstin"]].append(
                    {**head, "pos": doc.place_of_supply, "rchrg": "N", "inv_typ": SEZ_TYPES.get(doc.supply_type, "R")}
                )
            elif section == "b2cl":
                b2cl[doc.place_of_supply].append(head)
            elif section == "exp":
                exp[EXPORT_TYPES[doc.supply_type]].append(_export_item(head))
            else:
                _add_b2cs(b2cs, doc, items, 1)
        for note in self.notes:
            invoice = note.invoice
            section, items = _section(invoice), _items(CreditNoteLine.objects.filter(credit_note=note))
            self._row({"b2b": "cdnr", "b2cs": "b2cs"}.get(section, "cdnur"), "credit_note", note, items, invoice)
            _add_hsn(hsn, note, items, -1)
            head = {
                "ntty": "C",
                "nt_num": note.number,
                "nt_dt": _dt(note.date),
                "val": note.total,
                "pos": note.place_of_supply,
                "itms": _itms(items),
            }
            if section == "b2b":
                inv_typ = SEZ_TYPES.get(note.supply_type, "R")
                cdnr[note.customer["gstin"]].append({**head, "rchrg": "N", "inv_typ": inv_typ})
            elif section == "b2cs":
                _add_b2cs(b2cs, note, items, -1)
            else:
                typ = "B2CL" if section == "b2cl" else note.supply_type
                cdnur.append({**head, "typ": typ})
        return {
            "gstin": self.gstin,
            "fp": f"{self.month:%m%Y}",
            "b2b": [{"ctin": gstin, "inv": docs} for gstin, docs in sorted(b2b.items())],
            "b2cl": [{"pos": pos, "inv": docs} for pos, docs in sorted(b2cl.items())],
            "b2cs": [
                {"sply_ty": sply, "pos": pos, "typ": "OE", "rt": rate, **dict(heads), "csamt": ZERO}
                for (sply, pos, rate), heads in sorted(b2cs.items())
            ],
            "exp": [{"exp_typ": typ, "inv": docs} for typ, docs in sorted(exp.items())],
            "cdnr": [{"ctin": gstin, "nt": docs} for gstin, docs in sorted(cdnr.items())],
            "cdnur": cdnur,
            "hsn": {
                tab: [
                    {"num": index, "hsn_sc": sac, "uqc": "NA", "qty": ZERO, "rt": rate, **dict(heads), "csamt": ZERO}
                    for index, ((sac, rate), heads) in enumerate(sorted(rows.items()), start=1)
                ]
                for tab, rows in hsn.items()
            },
            "doc_issue": {"doc_det": self._doc_issue()},
        }

    def _doc_issue(self) -> list[dict]:
        details = []
        for doc_num, label, model in DOC_TYPES:
            series = (
                model.objects.filter(**self.window)
                .values("series_id")
                .annotate(first=Min("number"), last=Max("number"), count=Count("id"))
            )
            docs = [
                {"num": index, "from": row["first"], "to": row["last"], "totnum": row["count"], "cancel": 0}
                | {"net_issue": row["count"]}
                for index, row in enumerate(series.order_by("first"), start=1)
            ]
            if docs:
                details.append({"doc_num": doc_num, "doc_typ": label, "docs": docs})
        return details

    def json(self) -> str:
        return json.dumps(self.sections, indent=2, default=_number)

    def csv(self, section: str | None = None) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            if section is None or row["section"] == section:
                writer.writerow({k: f"{v:.2f}" if isinstance(v, Decimal) else v for k, v in row.items()})
        return out.getvalue()

    @property
    def name(self) -> str:
        """gstr1-MMYYYY, with the GSTIN when the operator has several."""
        several = len(supplier_gstins()) > 1
        return f"gstr1-{self.sections['fp']}" + (f"-{self.gstin}" if several else "")

    def zip(self) -> bytes:
        """gstr1-MMYYYY.json, all-rows CSV and one CSV per section, zipped."""
        fp = self.sections["fp"]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"gstr1-{fp}.json", self.json())
            archive.writestr(f"gstr1-{fp}-all.csv", self.csv())
            for section in sorted({row["section"] for row in self.rows}):
                archive.writestr(f"gstr1-{fp}-{section}.csv", self.csv(section))
        return buffer.getvalue()


def _zero_heads():
    return defaultdict(lambda: ZERO)


def _add_hsn(hsn, doc, items, sign: int) -> None:
    tab = hsn["hsn_b2b" if doc.supply_type in REGISTERED else "hsn_b2c"]
    for key, heads in items.items():
        for head, value in heads.items():
            tab[key][head] += sign * value


def _add_b2cs(b2cs, doc, items, sign: int) -> None:
    supply = "INTRA" if doc.regime == Regime.INTRA else "INTER"
    for (_, rate), heads in items.items():
        for head, value in heads.items():
            b2cs[(supply, doc.place_of_supply, rate)][head] += sign * value


def _export_item(head: dict) -> dict:
    return {**head, "itms": [{"rt": i["itm_det"]["rt"], **_export_heads(i["itm_det"])} for i in head["itms"]]}


def _export_heads(det: dict) -> dict:
    return {"txval": det["txval"], "iamt": det["iamt"], "csamt": ZERO}


def _number(value):
    """JSON numbers with two decimals (Decimal → float of a 2-place value)."""
    if isinstance(value, Decimal):
        return float(value.quantize(Decimal("0.01")))
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
