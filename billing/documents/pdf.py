"""PDF of a tax invoice, credit note or receipt voucher (fpdf2), laid out as
Indian GST documents are: title and copy marking, supplier block with GSTIN,
document number and date, recipient block with state and code, place of
supply, reverse-charge flag, line table with SAC and per-head rates and
amounts, totals with round-off, amount in words, endorsement, signature line
(Rules 46, 50 and 53).

Everything printed comes from the document's own snapshot, never from live
settings, so a reprint years later is the same document. Text is set in Noto
Sans with Noto Sans Devanagari as fallback (embedded subsets; Debian's
fonts-noto-core, directory ``BILLING_PDF_FONT_DIR``), shaped by HarfBuzz so
that conjuncts and vowel signs of Hindi and Marathi names come out right.
"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import segno
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from fpdf import FPDF
from fpdf.fonts import FontFace

from ..choices import Regime
from ..models import CreditNote, Invoice, ReceiptVoucher, RefundVoucher
from ..money import amount_in_words, format_inr
from ..selectors import einvoice_registration

FONT = "NotoSans"
DEVANAGARI = "NotoSansDevanagari"
# family -> style -> file in BILLING_PDF_FONT_DIR (Devanagari has no italic: its regular stands in).
FONT_FILES = {
    FONT: {"": "NotoSans-Regular.ttf", "B": "NotoSans-Bold.ttf", "I": "NotoSans-Italic.ttf"},
    DEVANAGARI: {"": "NotoSansDevanagari-Regular.ttf", "B": "NotoSansDevanagari-Bold.ttf"},
}
GREY = (235, 235, 235)
# How the recipient's identifier is labelled (billing.choices.RegistrationType).
ID_LABELS = {"gst_tds": "GSTIN (GST-TDS deductor)", "uin": "UIN"}


def font_paths() -> dict[tuple[str, str], Path]:
    """(family, style) -> font file; ImproperlyConfigured names what is missing."""
    folder = Path(settings.BILLING_PDF_FONT_DIR)
    paths = {(family, style): folder / name for family, styles in FONT_FILES.items() for style, name in styles.items()}
    paths[(DEVANAGARI, "I")] = paths[(DEVANAGARI, "")]
    missing = sorted({path.name for path in paths.values() if not path.is_file()})
    if missing:
        raise ImproperlyConfigured(
            f"GST PDFs need {', '.join(missing)} in {folder} (Debian package fonts-noto-core; "
            "deploy/install.sh installs it, BILLING_PDF_FONT_DIR points elsewhere)."
        )
    return paths


def latin1(text) -> str:
    """The text to print (any script: the embedded fonts cover Latin, ₹ and Devanagari)."""
    return str(text or "")


def money(value) -> str:
    return format_inr(value)


def rate(value) -> str:
    return f"{value.normalize():f}%"


def price(value) -> str:
    """A unit price: at least two decimals, more only when they matter (1.50, 0.7513)."""
    text = f"{value.normalize():f}"
    return text if len(text.partition(".")[2]) > 2 else f"{value:.2f}"


class DocumentPDF(FPDF):
    def __init__(self, title: str):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.doc_title = title
        self.set_auto_page_break(auto=True, margin=18)
        self.set_margins(10, 10, 10)
        for (family, style), path in font_paths().items():
            self.add_font(family, style, str(path))
        self.set_fallback_fonts([DEVANAGARI])
        self.set_text_shaping(True)
        self.set_title(title)
        self.set_creator("Control Plane billing")
        self.add_page()

    def footer(self):
        self.set_y(-12)
        self.set_font(FONT, size=7)
        self.cell(0, 5, latin1(f"{self.doc_title} - page {self.page_no()}/{{nb}}"), align="C")

    def text_line(self, text, *, size=9, bold=False, align="L", height=4.5):
        self.set_font(FONT, "B" if bold else "", size)
        self.multi_cell(0, height, latin1(text), align=align, new_x="LMARGIN", new_y="NEXT")


def _address(party: dict) -> list[str]:
    lines = [party.get("address_line1"), party.get("address_line2")]
    city = " - ".join(part for part in (party.get("city"), party.get("pin")) if part)
    lines.append(city)
    if party.get("country", "IN") != "IN":
        lines.append(f"Country: {party['country']}")
    return [line for line in lines if line]


def _header(pdf: DocumentPDF, doc, title: str, details: list[tuple[str, str]]) -> None:
    supplier, customer = doc.supplier, doc.customer
    pdf.text_line(title, size=14, bold=True, align="C", height=7)
    pdf.text_line("ORIGINAL FOR RECIPIENT", size=7, align="R", height=3)
    top = pdf.get_y() + 1
    pdf.set_xy(10, top)
    left = [supplier.get("trade_name") or ""] + _address(supplier)
    left += [
        f"State: {supplier.get('state_name')} (Code {supplier.get('state_code')})",
        f"GSTIN: {supplier.get('gstin')}    PAN: {supplier.get('pan')}",
    ]
    if supplier.get("email") or supplier.get("phone"):
        left.append("  ".join(x for x in (supplier.get("email"), supplier.get("phone")) if x))
    pdf.set_font(FONT, "B", 11)
    pdf.multi_cell(110, 5.5, latin1(supplier.get("legal_name")), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "", 8.5)
    for line in left:
        if line:
            pdf.multi_cell(110, 4.2, latin1(line), new_x="LMARGIN", new_y="NEXT")
    left_bottom = pdf.get_y()
    pdf.set_xy(122, top)
    for label, value in details:
        pdf.set_x(122)
        pdf.set_font(FONT, "B", 8.5)
        pdf.cell(30, 4.6, latin1(label))
        pdf.set_font(FONT, "", 8.5)
        pdf.multi_cell(48, 4.6, latin1(value), new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(max(left_bottom, pdf.get_y()) + 2)
    pdf.line(10, pdf.get_y(), 200, pdf.get_y())
    pdf.ln(2)
    pdf.text_line("Bill to (recipient)", size=8, bold=True)
    pdf.text_line(customer.get("legal_name"), size=10, bold=True, height=5)
    for line in _address(customer):
        pdf.text_line(line, size=8.5, height=4.2)
    if customer.get("state_code"):
        pdf.text_line(f"State: {customer.get('state_name')} (Code {customer.get('state_code')})", size=8.5, height=4.2)
    gstin = customer.get("gstin") or ("URP (overseas)" if customer.get("country", "IN") != "IN" else "Unregistered")
    sez = "  (SEZ unit/developer)" if customer.get("is_sez") else ""
    label = ID_LABELS.get(customer.get("registration_type", ""), "GSTIN")
    pdf.text_line(f"{label}: {gstin}{sez}", size=8.5, height=4.2)
    pdf.ln(2)


def _columns(doc) -> tuple[list[str], list[float]]:
    label = doc.state_tax_label
    if doc.regime == Regime.INTRA:
        heads = [
            "#",
            "Description",
            "SAC",
            "Qty",
            "Rate",
            "Taxable value",
            "CGST %",
            "CGST",
            f"{label} %",
            label,
            "Total",
        ]
        widths = [6, 50, 14, 16, 15, 21, 9, 15, 9, 15, 20]
    else:
        heads = ["#", "Description", "SAC", "Qty", "Rate", "Taxable value", "IGST %", "IGST", "Total"]
        widths = [6, 69, 14, 16, 15, 22, 9, 18, 21]
    return heads, widths


def _line_cells(doc, line) -> list[str]:
    qty = f"{line.quantity.normalize():f} {line.unit}"
    cells = [
        str(line.position),
        line.description,
        line.sac_code,
        qty,
        f"{line.rate.normalize():f}",
        money(line.taxable),
    ]
    if doc.regime == Regime.INTRA:
        cells += [rate(line.cgst_rate), money(line.cgst), rate(line.sgst_rate), money(line.sgst)]
    else:
        cells += [rate(line.igst_rate), money(line.igst)]
    return cells + [money(line.total)]


def _lines_table(pdf: DocumentPDF, doc, lines) -> None:
    heads, widths = _columns(doc)
    align = ["C", "L", "C"] + ["R"] * (len(heads) - 3)
    with pdf.table(
        col_widths=widths,
        width=190,
        text_align=align,
        line_height=4.2,
        headings_style=FontFace(emphasis="BOLD", fill_color=GREY),
        padding=0.8,
    ) as table:
        pdf.set_font(FONT, "", 7.5)
        table.row([latin1(h) for h in heads])
        for line in lines:
            table.row([latin1(cell) for cell in _line_cells(doc, line)])
        totals = ["", "Total", "", "", "", money(doc.taxable_total)]
        if doc.regime == Regime.INTRA:
            totals += ["", money(doc.cgst_total), "", money(doc.sgst_total)]
        else:
            totals += ["", money(doc.igst_total)]
        row = table.row(style=FontFace(emphasis="BOLD"))
        for cell in totals + [money(doc.taxable_total + doc.tax_total)]:
            row.cell(latin1(cell))
    pdf.ln(2)


def _totals(pdf: DocumentPDF, doc) -> None:
    rows = [("Taxable value", doc.taxable_total)]
    if doc.regime == Regime.INTRA:
        rows += [("CGST", doc.cgst_total), (doc.state_tax_label, doc.sgst_total)]
    else:
        rows += [("IGST", doc.igst_total)]
    rows += [("Round off", doc.round_off), ("Total (INR)", doc.total)]
    for label, value in rows:
        bold = label.startswith("Total")
        pdf.set_x(130)
        pdf.set_font(FONT, "B" if bold else "", 9 if bold else 8.5)
        pdf.cell(40, 5, latin1(label), border="T" if bold else 0)
        pdf.cell(30, 5, money(value), border="T" if bold else 0, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    pdf.text_line(f"Amount in words: {amount_in_words(doc.total)}", size=8.5, bold=True)
    pdf.text_line(f"Tax amount in words: {amount_in_words(doc.tax_total)}", size=8)


def _closing(pdf: DocumentPDF, doc, notes: list[str]) -> None:
    pdf.ln(1)
    if doc.endorsement:
        pdf.text_line(doc.endorsement, size=8.5, bold=True)
        if doc.supplier.get("lut_reference") and "WITHOUT PAYMENT" in doc.endorsement:
            pdf.text_line(f"LUT reference (ARN): {doc.supplier['lut_reference']}", size=8)
    for note in notes:
        pdf.text_line(note, size=8)
    if pdf.get_y() > 250:
        pdf.add_page()
    pdf.set_y(max(pdf.get_y() + 6, 245))
    pdf.set_x(120)
    pdf.set_font(FONT, "B", 9)
    pdf.cell(80, 5, latin1(f"For {doc.supplier.get('legal_name')}"), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(10)
    pdf.set_x(120)
    pdf.set_font(FONT, "", 8.5)
    signatory = doc.supplier.get("authorised_signatory")
    pdf.cell(80, 4.5, latin1(signatory or ""), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_x(120)
    pdf.cell(80, 4.5, "Authorised Signatory", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "I", 7)
    pdf.cell(0, 5, "This is a computer-generated document.", new_x="LMARGIN", new_y="NEXT")


def _common_details(doc, number_label: str, date_label: str) -> list[tuple[str, str]]:
    return [
        (number_label, doc.number),
        (date_label, f"{doc.date:%d/%m/%Y}"),
        ("Place of supply", f"{doc.place_of_supply_name} ({doc.place_of_supply})"),
        ("Reverse charge", "Yes" if doc.reverse_charge else "No"),
        ("Supply type", doc.get_supply_type_display()),
    ]


def _output(pdf: DocumentPDF, compress: bool) -> bytes:
    pdf.set_compression(compress)
    return bytes(pdf.output())


def einvoice_qr_png(signed_qr_code: str) -> bytes:
    """The IRP's signed QR code as a PNG QR symbol (error correction M, as the IRP's own)."""
    out = io.BytesIO()
    segno.make(signed_qr_code, error="m", micro=False).save(out, kind="png", scale=4, border=2)
    return out.getvalue()


def _einvoice_block(pdf: DocumentPDF, registration) -> None:
    """IRN, acknowledgement and the signed QR code (Rule 48(4)), under the header."""
    top = pdf.get_y()
    pdf.image(io.BytesIO(einvoice_qr_png(registration.signed_qr_code)), x=160, y=top, w=38, h=38)
    pdf.set_xy(10, top)
    ack = timezone.localtime(registration.ack_date)
    pdf.text_line("E-invoice (registered on the Invoice Registration Portal)", size=8.5, bold=True)
    pdf.set_font(FONT, "", 8)
    pdf.multi_cell(145, 4.2, f"IRN: {registration.irn}", new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(145, 4.2, f"Ack No.: {registration.ack_no}    Ack Date: {ack:%d/%m/%Y %H:%M} IST")
    pdf.set_y(max(pdf.get_y(), top + 40))


def invoice_pdf(invoice: Invoice, *, compress: bool = True) -> bytes:
    pdf = DocumentPDF(f"Tax invoice {invoice.number}")
    # period_end is exclusive (the first instant not supplied): the last day supplied is the day before it.
    last_instant = invoice.period_end - timedelta(microseconds=1)
    start, last = (timezone.localtime(t, timezone.get_default_timezone()) for t in (invoice.period_start, last_instant))
    details = _common_details(invoice, "Invoice no.", "Invoice date")
    details.insert(2, ("Supply period", f"{start:%d/%m/%Y} to {last:%d/%m/%Y}"))
    _header(pdf, invoice, "TAX INVOICE", details)
    registration = einvoice_registration(invoice=invoice)
    if registration is not None:
        _einvoice_block(pdf, registration)
    _lines_table(pdf, invoice, invoice.lines.all())
    _totals(pdf, invoice)
    notes = ["Paid from the prepaid wallet of the project; usage metered per second, in hours (HRS)."]
    _closing(pdf, invoice, notes)
    return _output(pdf, compress)


def credit_note_pdf(note: CreditNote, *, compress: bool = True) -> bytes:
    pdf = DocumentPDF(f"Credit note {note.number}")
    details = _common_details(note, "Credit note no.", "Date")
    details[2:2] = [("Against invoice", note.invoice.number), ("Invoice date", f"{note.invoice.date:%d/%m/%Y}")]
    _header(pdf, note, "CREDIT NOTE", details)
    _lines_table(pdf, note, note.lines.all())
    _totals(pdf, note)
    _closing(pdf, note, [f"Reason: {note.reason}", "Credited to the prepaid wallet of the project."])
    return _output(pdf, compress)


def receipt_pdf(receipt: ReceiptVoucher, *, compress: bool = True) -> bytes:
    pdf = DocumentPDF(f"Receipt voucher {receipt.number}")
    details = _common_details(receipt, "Receipt no.", "Date")
    if receipt.payment_mode or receipt.payment_reference:
        details.append(("Payment", " ".join(x for x in (receipt.payment_mode, receipt.payment_reference) if x)))
    _header(pdf, receipt, "RECEIPT VOUCHER", details)
    pdf.text_line(
        f"Received an advance of INR {money(receipt.total)} for cloud hosting services "
        f"(SAC {receipt.sac_code}) to be supplied from the prepaid wallet.",
        size=9,
    )
    pdf.ln(1)
    _totals(pdf, receipt)
    notes = [f"GST at {rate(receipt.gst_rate)} included in the advance, as shown above."]
    _closing(pdf, receipt, notes)
    return _output(pdf, compress)


def refund_voucher_pdf(voucher: RefundVoucher, *, compress: bool = True) -> bytes:
    pdf = DocumentPDF(f"Refund voucher {voucher.number}")
    details = _common_details(voucher, "Refund voucher no.", "Date")
    details[2:2] = [("Against receipt", voucher.receipt_number), ("Receipt date", f"{voucher.receipt_date:%d/%m/%Y}")]
    _header(pdf, voucher, "REFUND VOUCHER", details)
    pdf.text_line(
        f"Refunded INR {money(voucher.total)} of the advance received on receipt voucher {voucher.receipt_number} "
        f"for cloud hosting services (SAC {voucher.sac_code}) not supplied.",
        size=9,
    )
    pdf.ln(1)
    _totals(pdf, voucher)
    notes = [f"Reason: {voucher.reason}", f"GST at {rate(voucher.gst_rate)} included in the refund, as shown above."]
    _closing(pdf, voucher, notes)
    return _output(pdf, compress)
