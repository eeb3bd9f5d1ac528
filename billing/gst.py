"""GST rules as pure functions (no database): GSTIN validation, place of
supply, tax heads and document totals. The rules are in shared/GST.md.

Everything here takes and returns plain values so it can be tested exhaustively
(tests/billing/test_gst.py, hypothesis property tests).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .choices import Regime, RegistrationType, SupplyType
from .money import ZERO, paise, rupees

# GST state codes (the first two digits of a GSTIN and the place-of-supply code).
# 25 (old Daman & Diu) and 28 (old Andhra Pradesh) are no longer in use.
STATES = {
    "01": "Jammu and Kashmir",
    "02": "Himachal Pradesh",
    "03": "Punjab",
    "04": "Chandigarh",
    "05": "Uttarakhand",
    "06": "Haryana",
    "07": "Delhi",
    "08": "Rajasthan",
    "09": "Uttar Pradesh",
    "10": "Bihar",
    "11": "Sikkim",
    "12": "Arunachal Pradesh",
    "13": "Nagaland",
    "14": "Manipur",
    "15": "Mizoram",
    "16": "Tripura",
    "17": "Meghalaya",
    "18": "Assam",
    "19": "West Bengal",
    "20": "Jharkhand",
    "21": "Odisha",
    "22": "Chhattisgarh",
    "23": "Madhya Pradesh",
    "24": "Gujarat",
    "26": "Dadra and Nagar Haveli and Daman and Diu",
    "27": "Maharashtra",
    "29": "Karnataka",
    "30": "Goa",
    "31": "Lakshadweep",
    "32": "Kerala",
    "33": "Tamil Nadu",
    "34": "Puducherry",
    "35": "Andaman and Nicobar Islands",
    "36": "Telangana",
    "37": "Andhra Pradesh",
    "38": "Ladakh",
    "96": "Other Countries",
    "97": "Other Territory",
}
STATE_CHOICES = [(code, f"{code} - {name}") for code, name in STATES.items()]
OTHER_COUNTRIES = "96"
# Union territories without a legislature (CGST Act s.2(114)): the state half of
# intra-state tax is UTGST. Chandigarh, Dadra and Nagar Haveli and Daman and Diu,
# Lakshadweep, Andaman and Nicobar, Ladakh and "Other Territory" (s.2(114)(f)).
# Delhi 07, Puducherry 34 and Jammu and Kashmir 01 have legislatures (SGST);
# 25 and 28 are retired codes, 37 is Andhra Pradesh (a state).
UT_WITHOUT_LEGISLATURE = frozenset({"04", "26", "31", "35", "38", "97"})

ENDORSEMENTS = {
    SupplyType.EXPWOP: "SUPPLY MEANT FOR EXPORT UNDER LETTER OF UNDERTAKING WITHOUT PAYMENT OF INTEGRATED TAX",
    SupplyType.EXPWP: "SUPPLY MEANT FOR EXPORT ON PAYMENT OF INTEGRATED TAX",
    SupplyType.SEZWOP: (
        "SUPPLY MEANT FOR SEZ UNIT OR SEZ DEVELOPER FOR AUTHORISED OPERATIONS "
        "UNDER LETTER OF UNDERTAKING WITHOUT PAYMENT OF INTEGRATED TAX"
    ),
    SupplyType.SEZWP: (
        "SUPPLY MEANT FOR SEZ UNIT OR SEZ DEVELOPER FOR AUTHORISED OPERATIONS ON PAYMENT OF INTEGRATED TAX"
    ),
}

_GSTIN_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
GSTIN_SHAPE = "[0-9]{2}[A-Z]{5}[0-9]{4}[A-Z][1-9A-Z][A-Z0-9][0-9A-Z]"
_GSTIN_SHAPE = re.compile(f"^{GSTIN_SHAPE}$")
# Registrations that are not a regular GSTIN but identify a recipient the same way
# (15 characters, state code first, same check character):
# - GST-TDS (s.51, government deductors): state + TAN (4 letters, 1 letter/digit,
#   4 digits, 1 letter) + entity number + "D" + check;
# - UIN (s.25(9), UN bodies, embassies, consulates): state + 2 digits + 3-letter
#   country/body code + 5 digits + "UN"/"ON" + check.
GST_TDS_SHAPE = "[0-9]{2}[A-Z]{4}[A-Z0-9][0-9]{4}[A-Z][1-9A-Z]D[0-9A-Z]"
UIN_SHAPE = "[0-9]{4}[A-Z]{3}[0-9]{5}[UO]N[0-9A-Z]"
_GST_TDS_SHAPE = re.compile(f"^{GST_TDS_SHAPE}$")
_UIN_SHAPE = re.compile(f"^{UIN_SHAPE}$")
# Any of the three (a billing profile's `gstin` holds the one its registration_type names).
RECIPIENT_ID_SHAPE = f"(?:{GSTIN_SHAPE})|(?:{GST_TDS_SHAPE})|(?:{UIN_SHAPE})"


class GSTINError(ValueError):
    """A GSTIN that cannot be right; the message says why, for a person."""


def gstin_check_char(first14: str) -> str:
    """The 15th character: Luhn mod 36 over the first 14 (GST.md)."""
    total = 0
    for index, char in enumerate(first14):
        product = _GSTIN_CHARS.index(char) * (1 if index % 2 == 0 else 2)
        total += product // 36 + product % 36
    return _GSTIN_CHARS[(36 - total % 36) % 36]


_SHAPES = {
    RegistrationType.REGULAR: (
        _GSTIN_SHAPE,
        "Characters 3 to 12 of a GSTIN are the PAN (5 letters, 4 digits, 1 letter), "
        "followed by the entity number (1-9 or A-Z).",
    ),
    RegistrationType.GST_TDS: (
        _GST_TDS_SHAPE,
        "A GST-TDS registration is the state code, the deductor's TAN (4 letters, a letter or digit, 4 digits, "
        "a letter), the entity number, D and the check character.",
    ),
    RegistrationType.UIN: (
        _UIN_SHAPE,
        "A UIN is the state code, 2 digits, a 3-letter country or body code, 5 digits, UN or ON and the check "
        "character.",
    ),
}


def validate_gstin(value: str, kind: str = RegistrationType.REGULAR) -> str:
    """Return the GSTIN (or GST-TDS registration, or UIN: ``kind``) if valid,
    else raise GSTINError with a clear reason."""
    label = RegistrationType(kind).label
    if not isinstance(value, str) or not value.strip():
        raise GSTINError(f"Enter a {label}.")
    value = value.strip()
    if len(value) != 15:
        raise GSTINError(f"A {label} has 15 characters; this one has {len(value)}.")
    if value != value.upper():
        raise GSTINError(f"Write the {label} in capital letters: {value.upper()}.")
    if not all(char in _GSTIN_CHARS for char in value):
        raise GSTINError(f"A {label} contains only digits and capital letters.")
    if value[:2] not in STATES:
        raise GSTINError(f"A {label} starts with a state code; {value[:2]} is not a GST state code.")
    shape, explanation = _SHAPES[kind]
    if not shape.match(value):
        raise GSTINError(explanation)
    if gstin_check_char(value[:14]) != value[14]:
        raise GSTINError(f"The {label}'s last (check) character does not match the rest; check it for a typo.")
    return value


EINVOICE_REPORTING_DAYS = 30  # Above ₹10 crore turnover the IRP refuses invoices older than this.


def irn_of(*, supplier_gstin: str, financial_year: str, doc_type: str, number: str) -> str:
    """The Invoice Reference Number the IRP gives a document: SHA-256 (hex) of
    supplier GSTIN + financial year (2025-26) + INV/CRN/DBN + document number."""
    return hashlib.sha256(f"{supplier_gstin}{financial_year}{doc_type}{number}".encode()).hexdigest()


def state_name(code: str) -> str:
    return STATES.get(code, "")


@dataclass(frozen=True)
class Customer:
    """What place of supply depends on (a snapshot of the billing profile)."""

    country: str = "IN"
    state_code: str = ""
    gstin: str = ""
    is_sez: bool = False

    @property
    def is_abroad(self) -> bool:
        return self.country.upper() != "IN"


@dataclass(frozen=True)
class Treatment:
    """How a supply is taxed: place of supply, supply type, tax regime."""

    place_of_supply: str
    supply_type: str
    regime: str
    endorsement: str = ""
    state_tax_label: str = "SGST"  # UTGST in a union territory without legislature

    @property
    def place_of_supply_name(self) -> str:
        return state_name(self.place_of_supply)

    @property
    def e_invoiced(self) -> bool:
        return self.supply_type != SupplyType.B2C


def treatment(*, supplier_state: str, customer: Customer, lut: bool, lut_for_sez: bool = False) -> Treatment:
    """Place of supply and tax heads for a service supplied to ``customer``.

    - Abroad: export (place of supply 96), zero-rated under LUT or with IGST paid.
    - SEZ: always IGST, even in the supplier's state (or zero-rated under LUT
      when the operator configured ``lut_for_sez``).
    - Registered: the GSTIN's state. Unregistered: the address's state, or the
      supplier's state when no address exists.
    - Same state as the supplier: CGST + SGST/UTGST; otherwise IGST.
    """
    if customer.is_abroad:
        supply_type = SupplyType.EXPWOP if lut else SupplyType.EXPWP
        regime = Regime.ZERO_RATED if lut else Regime.INTER
        return Treatment(OTHER_COUNTRIES, supply_type, regime, ENDORSEMENTS[supply_type])
    if customer.is_sez:
        supply_type = SupplyType.SEZWOP if lut_for_sez else SupplyType.SEZWP
        regime = Regime.ZERO_RATED if lut_for_sez else Regime.INTER
        pos = customer.gstin[:2] if customer.gstin else customer.state_code
        return Treatment(pos, supply_type, regime, ENDORSEMENTS[supply_type])
    if customer.gstin:
        pos, supply_type = customer.gstin[:2], SupplyType.B2B
    else:
        pos, supply_type = customer.state_code or supplier_state, SupplyType.B2C
    if pos == supplier_state:
        label = "UTGST" if supplier_state in UT_WITHOUT_LEGISLATURE else "SGST"
        return Treatment(pos, supply_type, Regime.INTRA, state_tax_label=label)
    return Treatment(pos, supply_type, Regime.INTER)


@dataclass(frozen=True)
class Heads:
    """Tax on one taxable value. Rates are percent; amounts are paise-rounded."""

    taxable: Decimal
    gst_rate: Decimal
    cgst_rate: Decimal = ZERO
    cgst: Decimal = ZERO
    sgst_rate: Decimal = ZERO
    sgst: Decimal = ZERO
    igst_rate: Decimal = ZERO
    igst: Decimal = ZERO

    @property
    def tax(self) -> Decimal:
        return self.cgst + self.sgst + self.igst

    @property
    def total(self) -> Decimal:
        return self.taxable + self.tax


def tax_heads(*, taxable: Decimal, gst_rate: Decimal, regime: str) -> Heads:
    """Each head computed independently from the taxable value, ROUND_HALF_UP
    to paise (SGST is never derived from IGST)."""
    taxable, gst_rate = paise(taxable), Decimal(gst_rate)
    if regime == Regime.INTRA:
        half = gst_rate / 2
        return Heads(
            taxable,
            gst_rate,
            cgst_rate=half,
            cgst=paise(taxable * half / 100),
            sgst_rate=half,
            sgst=paise(taxable * half / 100),
        )
    if regime == Regime.INTER:
        return Heads(taxable, gst_rate, igst_rate=gst_rate, igst=paise(taxable * gst_rate / 100))
    return Heads(taxable, gst_rate, igst_rate=ZERO, igst=ZERO)


@dataclass(frozen=True)
class Totals:
    taxable: Decimal
    cgst: Decimal
    sgst: Decimal
    igst: Decimal
    round_off: Decimal
    total: Decimal

    @property
    def tax(self) -> Decimal:
        return self.cgst + self.sgst + self.igst

    @property
    def before_round_off(self) -> Decimal:
        return self.taxable + self.tax


def document_totals(lines: Iterable[Heads]) -> Totals:
    """Totals are sums of the lines; the round-off to the rupee is separate."""
    lines = list(lines)
    taxable = sum((line.taxable for line in lines), ZERO)
    cgst = sum((line.cgst for line in lines), ZERO)
    sgst = sum((line.sgst for line in lines), ZERO)
    igst = sum((line.igst for line in lines), ZERO)
    exact = taxable + cgst + sgst + igst
    total = rupees(exact)
    return Totals(taxable, cgst, sgst, igst, round_off=total - exact, total=total)


MAX_NUMBER_LENGTH = 16
SEQUENCE_DIGITS = 6


def document_number(prefix: str, fy: str, sequence: int) -> str:
    """``INV``, ``2025-26``, 123 → ``INV/2526/000123``."""
    return f"{prefix}/{fy[2:4]}{fy[5:7]}/{sequence:0{SEQUENCE_DIGITS}d}"


def prefix_error(prefix: str) -> str:
    """Why a series prefix cannot make valid numbers ("" when it can): the
    whole number (prefix, financial year, serial) must fit 16 characters."""
    longest = document_number(prefix or "", "2099-00", 10**SEQUENCE_DIGITS - 1)
    if len(longest) > MAX_NUMBER_LENGTH:
        room = MAX_NUMBER_LENGTH - len(longest) + len(prefix)
        return (
            f"Numbers would look like {longest} ({len(longest)} characters); a GST document number has at most "
            f"{MAX_NUMBER_LENGTH}. Use a prefix of at most {room} characters."
        )
    return ""


def financial_year(day) -> str:
    """1 April to 31 March, written ``2025-26``."""
    start = day.year if day.month >= 4 else day.year - 1
    return f"{start}-{(start + 1) % 100:02d}"


def credit_note_deadline(invoice_financial_year: str) -> date:
    """The last day a credit note may be issued against an invoice of that
    year (CGST Act s.34(2)): 30 November after the financial year's end."""
    return date(int(invoice_financial_year[:4]) + 1, 11, 30)
