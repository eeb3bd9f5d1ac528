"""PDF, e-invoice JSON and CSV export of issued documents."""

import csv
import io
import json
from datetime import date
from decimal import Decimal

import pytest
from pypdf import PdfReader

from billing import services
from billing.documents import einvoice, exports
from billing.documents.pdf import credit_note_pdf, invoice_pdf, receipt_pdf
from controlplane.errors import InvalidInput
from tests.fixtures.billing import HOUR, SUPPLIER_GSTIN, at, make_gstin, set_profile

D = Decimal
T0 = at("2025-05-01 04:30")
ISSUED = at("2025-06-01 06:00")


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


@pytest.fixture
def issue(project, supplier, vm_factory, plan):
    def make(profile="karnataka", hours=100, lut=False):
        services.billing_settings_update(actor="system:tests", lut_enabled=lut)
        set_profile(project, profile)
        vm_factory(
            [(T0, "active"), (T0 + hours * HOUR, "stopped"), (T0 + (hours + 10) * HOUR, "deleted")], name="web-1"
        )
        services.usage_meter(until=T0 + (hours + 20) * HOUR)
        return services.invoice_issue(project=project, actor="system:tests", at=ISSUED)

    return make


def test_invoice_pdf_carries_the_rule_46_fields(issue):
    invoice = issue("maharashtra")
    text = pdf_text(invoice_pdf(invoice))
    for expected in [
        "TAX INVOICE",
        "ORIGINAL FOR RECIPIENT",
        "Cloud Hosting Private Limited",
        f"GSTIN: {SUPPLIER_GSTIN}",
        "Invoice no.",
        invoice.number,
        "01/06/2025",
        f"GSTIN: {make_gstin('27')}",
        "State: Maharashtra (Code 27)",
        "Place of supply",
        "Maharashtra (27)",
        "Reverse charge",
        "998315",
        "Cloud server web-1",
        "100 HRS",
        "CGST",
        "SGST",
        "Round off",
        "Amount in words: Rupees",
        "Authorised Signatory",
    ]:
        assert expected in text, expected
    # 100 h x 1.50 + 10 h x 0.25 = 152.50; CGST 13.73 + SGST 13.73 (each rounded half up)
    assert (invoice.taxable_total, invoice.cgst_total, invoice.sgst_total) == (D("152.50"), D("13.73"), D("13.73"))
    assert "1,80.00" not in text and "180.00" in text  # 179.96 + 0.04 round-off


def test_export_invoice_pdf_shows_the_lut_endorsement_and_arn(issue):
    text = pdf_text(invoice_pdf(issue("abroad", lut=True)))
    assert "SUPPLY MEANT FOR EXPORT UNDER LETTER OF UNDERTAKING WITHOUT PAYMENT OF INTEGRATED TAX" in text
    assert "AD270325000123X" in text and "URP (overseas)" in text and "Other Countries (96)" in text


def test_credit_note_and_receipt_pdfs(issue, project):
    invoice = issue()
    note = services.credit_note_issue(
        invoice=invoice, amount="10", reason="Outage credit", actor="system:tests", at=ISSUED
    )
    text = pdf_text(credit_note_pdf(note))
    assert "CREDIT NOTE" in text and note.number in text and invoice.number in text and "Outage credit" in text
    receipt = services.wallet_topup(
        project=project, amount="590", actor="system:tests", payment_mode="UPI", reference="TXN42"
    )
    text = pdf_text(receipt_pdf(receipt))
    assert "RECEIPT VOUCHER" in text and receipt.number in text and "UPI TXN42" in text
    assert "500.00" in text and "90.00" in text  # IGST 18% included in 590.00


class TestEInvoice:
    def test_b2b_inter_state(self, issue):
        invoice = issue("karnataka")
        data = einvoice.document_json(invoice)
        assert data["Version"] == "1.1"
        assert data["TranDtls"] == {"TaxSch": "GST", "SupTyp": "B2B", "RegRev": "N", "IgstOnIntra": "N"}
        assert data["DocDtls"] == {"Typ": "INV", "No": invoice.number, "Dt": "01/06/2025"}
        assert data["SellerDtls"]["Gstin"] == SUPPLIER_GSTIN and data["SellerDtls"]["Stcd"] == "27"
        buyer = data["BuyerDtls"]
        assert (buyer["Gstin"], buyer["Pos"], buyer["Stcd"], buyer["Pin"]) == (make_gstin("29"), "29", "29", 560001)
        items = data["ItemList"]
        assert [i["IsServc"] for i in items] == ["Y", "Y"] and items[0]["HsnCd"] == "998315"
        assert sum(D(str(i["AssAmt"])) for i in items) == D(str(data["ValDtls"]["AssVal"])) == D("152.50")
        assert D(str(data["ValDtls"]["IgstVal"])) == D("27.45")
        assert D(str(data["ValDtls"]["TotInvVal"])) == invoice.total
        json.dumps(data)

    def test_sez_in_the_same_state_is_igst_on_intra(self, issue):
        data = einvoice.document_json(issue("sez"))
        assert data["TranDtls"]["SupTyp"] == "SEZWP" and data["TranDtls"]["IgstOnIntra"] == "Y"

    def test_export_under_lut(self, issue):
        data = einvoice.document_json(issue("abroad", lut=True))
        buyer = data["BuyerDtls"]
        assert data["TranDtls"]["SupTyp"] == "EXPWOP"
        assert (buyer["Gstin"], buyer["Pos"], buyer["Stcd"], buyer["Pin"]) == ("URP", "96", "96", 999999)
        assert data["ExpDtls"]["CntCode"] == "US" and data["ValDtls"]["IgstVal"] == 0

    def test_b2c_is_not_e_invoiced(self, issue):
        with pytest.raises(InvalidInput, match="not e-invoiced"):
            einvoice.document_json(issue("karnataka_unregistered"))

    def test_credit_note_refers_to_its_invoice(self, issue):
        invoice = issue("karnataka")
        note = services.credit_note_issue(invoice=invoice, amount="10", reason="x", actor="system:tests", at=ISSUED)
        data = einvoice.document_json(note)
        assert data["DocDtls"]["Typ"] == "CRN"
        assert data["RefDtls"]["PrecDocDtls"] == [{"InvNo": invoice.number, "InvDt": "01/06/2025"}]


def test_csv_export_of_a_period(issue):
    invoice = issue("karnataka")
    note = services.credit_note_issue(invoice=invoice, amount="10", reason="x", actor="system:tests", at=ISSUED)
    rows = list(csv.DictReader(io.StringIO(exports.documents_csv(start=date(2025, 6, 1), end=date(2025, 6, 30)))))
    assert [r["number"] for r in rows] == [invoice.number, note.number]
    assert rows[0]["customer_gstin"] == make_gstin("29") and rows[0]["place_of_supply"] == "29-Karnataka"
    assert (rows[0]["taxable"], rows[0]["igst"], rows[0]["total"]) == ("152.50", "27.45", f"{invoice.total:.2f}")
    assert (rows[1]["type"], rows[1]["taxable"], rows[1]["reference"]) == ("credit_note", "-10.00", invoice.number)
    assert exports.documents_csv(start=date(2025, 7, 1), end=date(2025, 7, 31)).count("\n") == 1
