"""E-invoice registration the offline way: the operator uploads the invoice's
INV-01 JSON (billing.documents.einvoice) to the Invoice Registration Portal
and imports the IRP's response here, per invoice.

A response is either the registration (IRN, acknowledgement number and date,
the signed QR code and signed invoice) or the IRP's error list. Every import
is kept (append-only); an invoice has at most one registration. Before a
registration is stored it must be this invoice's:

- the IRN is SHA-256 of supplier GSTIN + financial year + "INV" + number, as
  the IRP computes it (billing.gst.irn_of);
- the signed QR code's payload names the same seller and buyer GSTIN, number,
  date, total, item count and IRN;
- with the IRP's public key in Billing settings, the QR code's RS256
  signature verifies (without it, ``signature_verified`` stays false and the
  admin says so);
- the acknowledgement is not dated before the invoice, nor (for suppliers
  under the 30-day reporting limit) more than 30 days after it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from cryptography.x509 import load_pem_x509_certificate
from django.db import transaction
from django.utils import timezone

import audit
from controlplane.errors import Conflict, InvalidInput

from ..choices import EInvoiceStatus, SupplyType
from ..gst import EINVOICE_REPORTING_DAYS, irn_of
from ..models import EInvoiceResponse, Invoice
from ..periods import billing_tz, local_date
from ..selectors import billing_settings_get, einvoice_registration
from .documents import actor_name

_IRN = re.compile(r"^[0-9a-f]{64}$")
_ACK_NO = re.compile(r"^[0-9]{1,20}$")
EXPORT_TYPES = {SupplyType.EXPWP, SupplyType.EXPWOP}


def einvoice_days_left(*, invoice: Invoice, today) -> int:
    """Days left to report the invoice to the IRP (negative: past the limit)."""
    return (invoice.date + timedelta(days=EINVOICE_REPORTING_DAYS) - today).days


def einvoice_export_check(*, invoice: Invoice, at: datetime | None = None) -> str:
    """Refuse the INV-01 export of an invoice past the 30-day reporting limit
    (suppliers above ₹10 crore: the IRP would refuse it); else a warning ("" when none)."""
    settings = billing_settings_get()
    if not settings.einvoice_30_day_limit:
        return ""
    left = einvoice_days_left(invoice=invoice, today=local_date(at or timezone.now()))
    if left < 0:
        raise Conflict(
            f"Invoice {invoice.number} of {invoice.date:%d/%m/%Y} is past the {EINVOICE_REPORTING_DAYS}-day "
            "reporting limit: the IRP refuses it. Cancel it with a credit note and issue a new invoice."
        )
    return f"{left} day(s) left to register invoice {invoice.number} on the IRP." if left <= 7 else ""


def _bad(message: str) -> InvalidInput:
    """A response that cannot be imported; the message is the form's error too."""
    return InvalidInput(message, fields={"response": message})


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _parse(payload) -> dict:
    if isinstance(payload, bytes):
        try:
            payload = payload.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise _bad("The IRP response is not UTF-8 text.") from None
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError as exc:
            raise _bad(f"The IRP response is not JSON ({exc.msg}, line {exc.lineno}).") from None
    if not isinstance(payload, dict):
        raise _bad("The IRP response is a JSON object.")
    return payload


def _unwrap(payload: dict) -> tuple[str, dict | list]:
    """(status, data): the IRP API's ``{"Success": "Y", "Data": ...}`` envelope
    (Data may be a JSON string) or its bare ``Data`` object; an error list
    from ``{"Success": "N", "ErrorDetails": [...]}``."""
    success = str(payload.get("Success", payload.get("success", ""))).upper()
    if success == "N" or ("ErrorDetails" in payload and "Irn" not in payload):
        details = payload.get("ErrorDetails") or []
        if not isinstance(details, list) or not details:
            raise _bad("The IRP's error response has no ErrorDetails.")
        errors = [
            {"code": str(item.get("ErrorCode", "")), "message": str(item.get("ErrorMessage", ""))[:500]}
            for item in details
            if isinstance(item, dict)
        ]
        return EInvoiceStatus.REJECTED, errors
    data = payload.get("Data", payload)
    if isinstance(data, str):
        data = _parse(data)
    if not isinstance(data, dict):
        raise _bad("The IRP response's Data is a JSON object.")
    return EInvoiceStatus.REGISTERED, data


def jwt_decode(token: str) -> tuple[dict, dict, bytes, bytes]:
    """Header, payload, signing input and signature of a compact JWS."""
    parts = token.strip().split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        raise _bad("SignedQRCode is not a signed token (three base64url parts separated by dots).")
    try:
        header, payload = json.loads(_b64(parts[0])), json.loads(_b64(parts[1]))
        signature = _b64(parts[2])
    except (ValueError, binascii.Error):
        raise _bad("SignedQRCode's header or payload is not base64url-encoded JSON.") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise _bad("SignedQRCode's header and payload are JSON objects.")
    return header, payload, f"{parts[0]}.{parts[1]}".encode(), signature


def _signature_ok(pem: str, header: dict, signing_input: bytes, signature: bytes) -> bool:
    if header.get("alg") != "RS256":
        raise _bad(f"SignedQRCode is signed with {header.get('alg')!r}; the IRP signs with RS256.")
    data = pem.strip().encode()
    key = load_pem_x509_certificate(data).public_key() if b"CERTIFICATE" in data else load_pem_public_key(data)
    try:
        key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def einvoice_expected_qr(invoice: Invoice, irn: str) -> dict:
    """What the IRP's signed QR code says about this invoice."""
    buyer = "URP" if invoice.supply_type in EXPORT_TYPES else invoice.customer.get("gstin", "")
    return {
        "SellerGstin": invoice.supplier.get("gstin", ""),
        "BuyerGstin": buyer,
        "DocNo": invoice.number,
        "DocTyp": "INV",
        "DocDt": f"{invoice.date:%d/%m/%Y}",
        "TotInvVal": invoice.total,
        "ItemCnt": invoice.lines.count(),
        "Irn": irn,
    }


def _qr_mismatches(invoice: Invoice, irn: str, qr: dict) -> list[str]:
    problems = []
    for key, expected in einvoice_expected_qr(invoice, irn).items():
        got = qr.get(key)
        if isinstance(expected, Decimal):
            try:
                same = Decimal(str(got)) == expected
            except (InvalidOperation, ValueError):
                same = False
        else:
            same = str(got) == str(expected)
        if not same:
            problems.append(f"{key} is {got!r}, the invoice has {str(expected)!r}")
    return problems


def _ack_date(value) -> datetime:
    """``AckDt`` as the IRP writes it (IST, "2026-06-02 11:45:00")."""
    try:
        moment = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise _bad(f"AckDt {value!r} is not a date and time such as 2026-06-02 11:45:00.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=billing_tz())


def _registration_fields(invoice: Invoice, data: dict, settings, at: datetime) -> dict:
    irn = str(data.get("Irn", "")).strip()
    expected_irn = irn_of(
        supplier_gstin=invoice.supplier.get("gstin", ""),
        financial_year=invoice.financial_year,
        doc_type="INV",
        number=invoice.number,
    )
    if not _IRN.match(irn):
        raise _bad("Irn is 64 lowercase hexadecimal characters.")
    if irn != expected_irn:
        raise _bad(
            f"This IRN is not invoice {invoice.number}'s: the IRP derives it from the supplier GSTIN, financial "
            f"year, document type and number, which give {expected_irn}. Was the response of another invoice "
            "imported?"
        )
    ack_no = str(data.get("AckNo", "")).strip()
    if not _ACK_NO.match(ack_no):
        raise _bad("AckNo is the IRP's acknowledgement number (digits).")
    ack_date = _ack_date(data.get("AckDt", ""))
    if local_date(ack_date) < invoice.date or ack_date > at + timedelta(minutes=10):
        raise _bad(
            f"AckDt {ack_date:%d/%m/%Y %H:%M} is before invoice {invoice.number} of {invoice.date:%d/%m/%Y} or in "
            "the future."
        )
    limit = invoice.date + timedelta(days=EINVOICE_REPORTING_DAYS)
    if settings.einvoice_30_day_limit and local_date(ack_date) > limit:
        raise Conflict(
            f"Acknowledged on {ack_date:%d/%m/%Y}, after {limit:%d/%m/%Y}: the IRP accepts an invoice for 30 days "
            "from its date at this turnover. Check the response."
        )
    signed_qr = str(data.get("SignedQRCode", "")).strip()
    header, claims, signing_input, signature = jwt_decode(signed_qr)
    try:
        qr = json.loads(claims.get("data", "")) if isinstance(claims.get("data"), str) else claims.get("data")
    except ValueError:
        qr = None
    if not isinstance(qr, dict):
        raise _bad("SignedQRCode carries no invoice data (its data claim).")
    problems = _qr_mismatches(invoice, irn, qr)
    if problems:
        raise _bad(f"The signed QR code is not invoice {invoice.number}'s: " + "; ".join(problems) + ".")
    verified = False
    if settings.irp_public_key:
        verified = _signature_ok(settings.irp_public_key, header, signing_input, signature)
        if not verified:
            raise _bad("The signed QR code's signature does not verify with the IRP public key of Billing settings.")
    return {
        "irn": irn,
        "ack_no": ack_no,
        "ack_date": ack_date,
        "signed_qr_code": signed_qr,
        "signed_invoice": str(data.get("SignedInvoice", "")),
        "signature_verified": verified,
    }


@transaction.atomic
def einvoice_response_import(*, invoice: Invoice, payload, actor, at: datetime | None = None) -> EInvoiceResponse:
    """Store the IRP's response for ``invoice`` (JSON text, bytes or a dict).
    A registration that is not this invoice's, or a second one, is refused;
    an error list is kept as a rejection (the invoice stays unregistered)."""
    at = at or timezone.now()
    if invoice.supply_type == SupplyType.B2C:
        raise InvalidInput(f"{invoice.number} is to an unregistered customer (B2C): B2C invoices are not e-invoiced.")
    Invoice.objects.select_for_update(no_key=True).filter(pk=invoice.pk).first()
    existing = einvoice_registration(invoice=invoice)
    if existing is not None:
        raise Conflict(f"Invoice {invoice.number} is registered already (IRN {existing.irn}); its record stays.")
    raw = _parse(payload)
    status, data = _unwrap(raw)
    settings = billing_settings_get()
    if status == EInvoiceStatus.REJECTED:
        fields = {"errors": data}
    else:
        fields = _registration_fields(invoice, data, settings, at)
    if fields.get("irn") and EInvoiceResponse.objects.filter(irn=fields["irn"]).exists():
        raise Conflict(f"IRN {fields['irn']} is recorded for another invoice already.")
    response = EInvoiceResponse.objects.create(
        invoice=invoice, status=status, raw=raw, imported_at=at, imported_by=actor_name(actor), **fields
    )
    details = {"number": invoice.number, "status": status}
    details |= {"irn": response.irn, "ack_no": response.ack_no} if response.irn else {"errors": response.errors}
    action = "einvoice.registered" if response.irn else "einvoice.rejected"
    audit.record(actor=actor, action=action, target=invoice, project=invoice.project_id, details=details)
    return response
