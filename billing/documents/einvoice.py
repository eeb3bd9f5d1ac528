"""E-invoice INV-01 JSON (schema version 1.1) of an invoice or credit note,
for upload to the Invoice Registration Portal. B2B, SEZ and export documents
only: B2C is not e-invoiced. Built from the document's snapshot."""

from __future__ import annotations

from decimal import Decimal

from controlplane.errors import InvalidInput

from ..choices import SupplyType
from ..models import CreditNote, Invoice

EXPORT_PIN = 999999
OVERSEAS = "URP"


def _num(value: Decimal, places: int = 2) -> float:
    return float(Decimal(value).quantize(Decimal(1).scaleb(-places)))


def _clean(data: dict) -> dict:
    """Drop empty optional fields (the portal rejects empty strings)."""
    return {key: value for key, value in data.items() if value not in ("", None)}


def _pin(value: str) -> int | None:
    return int(value) if value and value.isdigit() else None


def _seller(supplier: dict) -> dict:
    return _clean(
        {
            "Gstin": supplier["gstin"],
            "LglNm": supplier["legal_name"],
            "TrdNm": supplier.get("trade_name"),
            "Addr1": supplier.get("address_line1"),
            "Addr2": supplier.get("address_line2"),
            "Loc": supplier.get("city"),
            "Pin": _pin(supplier.get("pin", "")),
            "Stcd": supplier["state_code"],
            "Ph": "".join(c for c in supplier.get("phone", "") if c.isdigit())[:12],
            "Em": supplier.get("email"),
        }
    )


def _buyer(doc) -> dict:
    customer, abroad = doc.customer, doc.supply_type in (SupplyType.EXPWP, SupplyType.EXPWOP)
    return _clean(
        {
            "Gstin": OVERSEAS if abroad else customer["gstin"],
            "LglNm": customer["legal_name"],
            "Pos": doc.place_of_supply,
            "Addr1": customer.get("address_line1"),
            "Addr2": customer.get("address_line2"),
            "Loc": customer.get("city"),
            "Pin": EXPORT_PIN if abroad else _pin(customer.get("pin", "")),
            "Stcd": "96" if abroad else customer["state_code"],
            "Em": customer.get("email"),
        }
    )


def _item(line) -> dict:
    return {
        "SlNo": str(line.position),
        "PrdDesc": line.description[:300],
        "IsServc": "Y",
        "HsnCd": line.sac_code,
        "Qty": _num(line.quantity, 3),
        "Unit": "OTH",
        "UnitPrice": _num(line.rate, 3),
        "TotAmt": _num(line.taxable),
        "Discount": 0,
        "AssAmt": _num(line.taxable),
        "GstRt": _num(line.gst_rate, 3),
        "IgstAmt": _num(line.igst),
        "CgstAmt": _num(line.cgst),
        "SgstAmt": _num(line.sgst),
        "CesRt": 0,
        "CesAmt": 0,
        "CesNonAdvlAmt": 0,
        "StateCesRt": 0,
        "StateCesAmt": 0,
        "StateCesNonAdvlAmt": 0,
        "OthChrg": 0,
        "TotItemVal": _num(line.total),
    }


def document_json(doc: Invoice | CreditNote) -> dict:
    """The INV-01 payload; raises InvalidInput for a B2C document."""
    if doc.supply_type == SupplyType.B2C:
        raise InvalidInput(f"{doc.number} is to an unregistered customer (B2C): B2C documents are not e-invoiced.")
    is_note = isinstance(doc, CreditNote)
    igst_on_intra = doc.igst_total > 0 and doc.place_of_supply == doc.supplier["state_code"]
    data = {
        "Version": "1.1",
        "TranDtls": {
            "TaxSch": "GST",
            "SupTyp": doc.supply_type,
            "RegRev": "N",
            "IgstOnIntra": "Y" if igst_on_intra else "N",
        },
        "DocDtls": {"Typ": "CRN" if is_note else "INV", "No": doc.number, "Dt": f"{doc.date:%d/%m/%Y}"},
        "SellerDtls": _seller(doc.supplier),
        "BuyerDtls": _buyer(doc),
        "ItemList": [_item(line) for line in doc.lines.all()],
        "ValDtls": {
            "AssVal": _num(doc.taxable_total),
            "CgstVal": _num(doc.cgst_total),
            "SgstVal": _num(doc.sgst_total),
            "IgstVal": _num(doc.igst_total),
            "CesVal": 0,
            "StCesVal": 0,
            "Discount": 0,
            "OthChrg": 0,
            "RndOffAmt": _num(doc.round_off),
            "TotInvVal": _num(doc.total),
        },
    }
    if is_note:
        data["RefDtls"] = {"PrecDocDtls": [{"InvNo": doc.invoice.number, "InvDt": f"{doc.invoice.date:%d/%m/%Y}"}]}
    if doc.supply_type in (SupplyType.EXPWP, SupplyType.EXPWOP):
        data["ExpDtls"] = {"CntCode": doc.customer.get("country", "")}
    return data
