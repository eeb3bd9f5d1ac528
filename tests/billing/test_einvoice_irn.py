"""E-invoice registration, the offline path: the IRP's response imported per
invoice, checked against the invoice (IRN hash, signed QR payload, RS256
signature), stored append-only, printed on the PDF as IRN and QR code, and
the PDF held from the customer until then."""

import base64
import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
import segno
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.db import IntegrityError, transaction
from PIL import Image
from pypdf import PdfReader
from rest_framework.test import APIClient

from audit.models import AuditEvent
from billing import services
from billing.documents.einvoice import document_json
from billing.documents.pdf import invoice_pdf
from billing.gst import irn_of
from billing.models import EInvoiceResponse
from controlplane.errors import Conflict, InvalidInput
from tests.fixtures.accounts import login_operator
from tests.fixtures.billing import HOUR, at, set_profile
from tests.fixtures.factories import UserFactory

T0 = at("2025-05-01 04:30")
ISSUED = at("2025-06-01 06:00")  # invoice date 1 June 2025 (IST)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def irp_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def irp_pem(key) -> str:
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return public.decode()


def sign(key, claims: dict) -> str:
    """A compact RS256 JWS as the IRP makes its SignedQRCode."""
    head = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{_b64(signature)}"


def irp_response(invoice, key, *, ack_at="2025-06-02 11:45:00", **qr_changes) -> dict:
    """What the IRP answers for ``invoice`` (API envelope, Data as a JSON string)."""
    irn = irn_of(
        supplier_gstin=invoice.supplier["gstin"],
        financial_year=invoice.financial_year,
        doc_type="INV",
        number=invoice.number,
    )
    qr = {
        "SellerGstin": invoice.supplier["gstin"],
        "BuyerGstin": invoice.customer["gstin"],
        "DocNo": invoice.number,
        "DocTyp": "INV",
        "DocDt": f"{invoice.date:%d/%m/%Y}",
        "TotInvVal": float(invoice.total),
        "ItemCnt": invoice.lines.count(),
        "MainHsnCode": "998315",
        "Irn": irn,
        "IrnDt": ack_at,
        **qr_changes,
    }
    data = {
        "AckNo": 112510012345678,
        "AckDt": ack_at,
        "Irn": irn,
        "SignedInvoice": sign(key, {"data": "{}"}),
        "SignedQRCode": sign(key, {"data": json.dumps(qr), "iss": "NIC"}),
        "Status": "ACT",
    }
    return {"Success": "Y", "Data": json.dumps(data)}


@pytest.fixture
def invoice(project, supplier, vm_factory, irp_key):
    services.billing_settings_update(actor="system:tests", einvoice_required=True, irp_public_key=irp_pem(irp_key))
    set_profile(project, "karnataka")
    vm_factory([(T0, "active"), (T0 + 100 * HOUR, "deleted")], name="web-1")
    services.usage_meter(until=T0 + 101 * HOUR)
    return services.invoice_issue(project=project, actor="system:tests", at=ISSUED)


def test_irn_is_the_irps_hash_of_gstin_year_type_and_number():
    # Published example (GSTZen): SHA-256("29AAFCC9980M1ZR2019-20INV2019-20/KA/1").
    assert (
        irn_of(supplier_gstin="29AAFCC9980M1ZR", financial_year="2019-20", doc_type="INV", number="2019-20/KA/1")
        == "23f498ee41441ecad30f72ba5b9907506c3df70a17b0e0dff46b76a786400662"
    )


def test_an_imported_registration_is_stored_verified_and_printed_with_its_qr(invoice, irp_key):
    payload = irp_response(invoice, irp_key)
    response = services.einvoice_response_import(
        invoice=invoice, payload=json.dumps(payload), actor="operator:tests", at=ISSUED + timedelta(days=2)
    )
    assert response.status == "registered" and response.signature_verified
    assert response.irn == irn_of(
        supplier_gstin="27AAPFU0939F1ZV", financial_year="2025-26", doc_type="INV", number=invoice.number
    )
    assert response.ack_no == "112510012345678"
    response.refresh_from_db()
    assert f"{response.ack_date:%Y-%m-%d %H:%M %Z}" == "2025-06-02 06:15 UTC"  # 11:45 IST, stored in UTC
    assert AuditEvent.objects.filter(action="einvoice.registered").count() == 1

    data = invoice_pdf(invoice, compress=False)
    page = PdfReader(io.BytesIO(data)).pages[0]
    text = page.extract_text()
    assert response.irn in text.replace("\n", "") and "Ack No.: 112510012345678" in text
    assert "02/06/2025 11:45" in text
    # The embedded picture is the QR symbol of the signed QR code, module for module.
    images = page.images
    assert len(images) == 1
    printed = images[0].image.convert("1")
    expected = Image.open(io.BytesIO(segno_png(response.signed_qr_code))).convert("1")
    assert printed.size == expected.size and printed.tobytes() == expected.tobytes()


def segno_png(content: str) -> bytes:
    out = io.BytesIO()
    segno.make(content, error="m", micro=False).save(out, kind="png", scale=4, border=2)
    return out.getvalue()


def test_the_customer_gets_the_pdf_only_once_the_irn_is_there(invoice, irp_key, user, client):
    client.force_login(user)
    page = f"/billing/{invoice.project.slug}/invoices/"
    assert "Awaiting IRN" in client.get(page).content.decode()
    refused = client.get(f"/billing/{invoice.project.slug}/invoices/{invoice.pk}/pdf/", HTTP_REFERER=page)
    assert refused.status_code == 302
    assert "Invoice Registration Portal" in client.get(page).content.decode()  # the message, on the list
    api = APIClient()
    api.force_authenticate(user)
    url = f"/api/v1/projects/{invoice.project.slug}/invoices/{invoice.pk}/pdf/"
    held = api.get(url)
    assert held.status_code == 409
    assert "Invoice Registration Portal" in held.json()["error"]["message"]
    listed = api.get(f"/api/v1/projects/{invoice.project.slug}/invoices/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert rows[0]["einvoice_status"] == "pending" and rows[0]["irn"] is None
    services.einvoice_response_import(invoice=invoice, payload=irp_response(invoice, irp_key), actor="operator:tests")
    assert api.get(url).status_code == 200
    assert "Awaiting IRN" not in client.get(page).content.decode()
    detail = api.get(f"/api/v1/projects/{invoice.project.slug}/invoices/{invoice.pk}/").json()
    assert detail["einvoice_status"] == "registered" and len(detail["irn"]) == 64 and detail["ack_no"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"DocNo": "INV/2526/000099"}, "DocNo"),
        ({"TotInvVal": 1.0}, "TotInvVal"),
        ({"BuyerGstin": "29AABCT1332L2ZU"}, "BuyerGstin"),
        ({"ItemCnt": 7}, "ItemCnt"),
    ],
)
def test_a_qr_code_of_another_document_is_refused(invoice, irp_key, change, message):
    with pytest.raises(InvalidInput, match=message):
        services.einvoice_response_import(
            invoice=invoice, payload=irp_response(invoice, irp_key, **change), actor="operator:tests"
        )
    assert not EInvoiceResponse.objects.exists()


def test_an_irn_that_is_not_this_invoices_is_refused(invoice, irp_key):
    payload = irp_response(invoice, irp_key)
    data = json.loads(payload["Data"])
    data["Irn"] = irn_of(supplier_gstin="27AAPFU0939F1ZV", financial_year="2025-26", doc_type="INV", number="X1")
    with pytest.raises(InvalidInput, match="is not invoice"):
        services.einvoice_response_import(
            invoice=invoice, payload={"Success": "Y", "Data": data}, actor="operator:tests"
        )


def test_a_signature_that_does_not_verify_is_refused(invoice, irp_key):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(InvalidInput, match="signature does not verify"):
        services.einvoice_response_import(invoice=invoice, payload=irp_response(invoice, other), actor="operator:tests")
    # Without a configured key the registration is kept, marked unchecked.
    services.billing_settings_update(actor="system:tests", irp_public_key="")
    response = services.einvoice_response_import(
        invoice=invoice, payload=irp_response(invoice, other), actor="operator:tests"
    )
    assert not response.signature_verified


@pytest.mark.parametrize(
    "payload, message",
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ({"Success": "N"}, "no ErrorDetails"),
        ({"AckNo": "1", "AckDt": "2025-06-02 10:00:00", "Irn": "abc"}, "64 lowercase"),
    ],
)
def test_malformed_responses_are_clear_input_errors(invoice, payload, message):
    with pytest.raises(InvalidInput, match=message):
        services.einvoice_response_import(invoice=invoice, payload=payload, actor="operator:tests")


def test_an_error_list_is_kept_and_the_invoice_stays_unregistered(invoice, irp_key):
    rejection = {"Success": "N", "ErrorDetails": [{"ErrorCode": "2150", "ErrorMessage": "Duplicate IRN"}]}
    response = services.einvoice_response_import(invoice=invoice, payload=rejection, actor="operator:tests")
    assert response.status == "rejected" and response.errors == [{"code": "2150", "message": "Duplicate IRN"}]
    assert services.einvoice_response_import(
        invoice=invoice, payload=irp_response(invoice, irp_key), actor="operator:tests"
    ).irn
    with pytest.raises(Conflict, match="registered already"):
        services.einvoice_response_import(
            invoice=invoice, payload=irp_response(invoice, irp_key), actor="operator:tests"
        )


@pytest.mark.django_db(transaction=False)
def test_responses_are_append_only_and_one_irn_per_invoice(invoice, irp_key):
    response = services.einvoice_response_import(
        invoice=invoice, payload=irp_response(invoice, irp_key), actor="operator:tests"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        EInvoiceResponse.objects.filter(pk=response.pk).update(ack_no="1")
    with pytest.raises(IntegrityError), transaction.atomic():
        EInvoiceResponse.objects.create(
            invoice=invoice, status="registered", irn="f" * 64, raw={}, imported_at=ISSUED, imported_by="x"
        )


def test_the_30_day_reporting_limit(invoice, irp_key):
    services.billing_settings_update(actor="system:tests", einvoice_30_day_limit=True)
    assert "day(s) left" in services.einvoice_export_check(invoice=invoice, at=ISSUED + timedelta(days=25))
    assert services.einvoice_export_check(invoice=invoice, at=ISSUED + timedelta(days=2)) == ""
    with pytest.raises(Conflict, match="30-day"):
        services.einvoice_export_check(invoice=invoice, at=ISSUED + timedelta(days=31))
    late = irp_response(invoice, irp_key, ack_at="2025-07-05 10:00:00")
    with pytest.raises(Conflict, match="30 days"):
        services.einvoice_response_import(
            invoice=invoice, payload=late, actor="operator:tests", at=ISSUED + timedelta(days=40)
        )
    with pytest.raises(InvalidInput) as caught:
        services.billing_settings_update(actor="system:tests", einvoice_required=False)
    assert "only to suppliers that e-invoice" in caught.value.fields["einvoice_30_day_limit"]


def test_b2c_invoices_are_not_e_invoiced_and_need_no_irn(project, supplier, vm_factory, user):
    services.billing_settings_update(actor="system:tests", einvoice_required=True)
    set_profile(project, "karnataka_unregistered")
    vm_factory([(T0, "active"), (T0 + 10 * HOUR, "deleted")])
    services.usage_meter(until=T0 + 11 * HOUR)
    b2c = services.invoice_issue(project=project, actor="system:tests", at=ISSUED)
    with pytest.raises(InvalidInput, match="not e-invoiced"):
        services.einvoice_response_import(invoice=b2c, payload={}, actor="operator:tests")
    api = APIClient()
    api.force_authenticate(user)
    assert api.get(f"/api/v1/projects/{project.slug}/invoices/{b2c.pk}/pdf/").status_code == 200


def test_a_bad_irp_key_is_a_settings_error(supplier):
    with pytest.raises(InvalidInput) as caught:
        services.billing_settings_update(actor="system:tests", irp_public_key="-----BEGIN PUBLIC KEY-----\nxx")
    assert "PEM" in caught.value.fields["irp_public_key"]


def test_the_operator_imports_in_admin(invoice, irp_key, client):
    login_operator(client, UserFactory(is_staff=True, is_superuser=True))
    changelist = client.get("/admin/billing/invoice/").content.decode()
    assert "Import response" in changelist
    url = f"/admin/billing/invoice/{invoice.pk}/e-invoice/import/"
    bad = client.post(url, {"response": "{"})
    assert bad.status_code == 200 and "not JSON" in bad.content.decode()
    good = client.post(url, {"response": json.dumps(irp_response(invoice, irp_key))})
    assert good.status_code == 302
    assert EInvoiceResponse.objects.get().signature_verified
    assert "IRN " in client.get("/admin/billing/invoice/").content.decode()
    exported = client.get(f"/admin/billing/invoice/{invoice.pk}/e-invoice/")
    assert exported.status_code == 200 and exported.json() == json.loads(json.dumps(document_json(invoice)))
    assert Decimal(str(exported.json()["ValDtls"]["TotInvVal"])) == invoice.total


def test_admin_warns_and_refuses_the_json_past_the_limit(invoice, client):
    # The invoice is of 1 June 2025; today (the test clock) is long past its 30 days.
    services.billing_settings_update(actor="system:tests", einvoice_30_day_limit=True)
    login_operator(client, UserFactory(is_staff=True, is_superuser=True))
    assert "past the 30-day limit" in client.get("/admin/billing/invoice/").content.decode()
    refused = client.get(f"/admin/billing/invoice/{invoice.pk}/e-invoice/", follow=True)
    assert "past the 30-day reporting limit" in refused.content.decode()
    assert refused.redirect_chain and refused.redirect_chain[-1][0] == "/admin/billing/invoice/"
