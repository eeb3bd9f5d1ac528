"""Supplier settings and billing profiles: validation and audited updates."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.db import transaction
from django.urls import reverse

import audit
from accounts.models import Project
from controlplane.errors import Conflict, InvalidInput

from ..choices import RegistrationType
from ..gst import OTHER_COUNTRIES, STATES, GSTINError, prefix_error, state_name, validate_gstin
from ..models import BillingProfile, BillingSettings, SupplierRegistration
from ..selectors import billing_settings_get

PROFILE_FIELDS = (
    "legal_name",
    "address_line1",
    "address_line2",
    "city",
    "pin",
    "state_code",
    "country",
    "gstin",
    "registration_type",
    "is_sez",
    "billing_email",
)
SETTINGS_FIELDS = tuple(f.name for f in BillingSettings._meta.concrete_fields if f.name not in {"id", "updated_at"})
_INDIAN_PIN = re.compile(r"^[1-9][0-9]{5}$")


def _gstin_state_error(gstin: str, state_code: str, what: str) -> str:
    return (
        f"The GSTIN is registered in {state_name(gstin[:2])} ({gstin[:2]}) but {what} is in "
        f"{state_name(state_code) or state_code} ({state_code}); use the GSTIN of that state."
    )


def billing_settings_validate(values: dict) -> dict[str, str]:
    """Field errors of the supplier settings (empty when valid)."""
    errors = {}
    gstin = values.get("gstin", "")
    if gstin:
        try:
            validate_gstin(gstin)
        except GSTINError as exc:
            errors["gstin"] = str(exc)
        else:
            if gstin[:2] != values.get("state_code"):
                errors["state_code"] = _gstin_state_error(gstin, values.get("state_code", ""), "the supplier")
    prefix_names = ("invoice_prefix", "credit_note_prefix", "receipt_prefix")
    prefixes = [values[name] for name in prefix_names if name in values]
    for name in prefix_names:
        if name in values and prefix_error(values[name]):
            errors[name] = prefix_error(values[name])
    if len(set(prefixes)) != len(prefixes):
        errors["credit_note_prefix"] = "Invoices, credit notes and receipts each need their own prefix."
    for row in SupplierRegistration.objects.values_list("gstin", "invoice_prefix", "credit_note_prefix"):
        if gstin and row[0][:2] == gstin[:2]:
            errors["gstin"] = f"The further registration {row[0]} is in state {row[0][:2]} already."
        for name in prefix_names:
            if values.get(name) in row[1:]:
                errors[name] = f"{values[name]} is the prefix of a series of the registration {row[0]}."
    try:
        [Decimal(v.strip()) for v in values.get("low_balance_thresholds", "").split(",") if v.strip()]
    except InvalidOperation:
        errors["low_balance_thresholds"] = "Rupee amounts separated by commas, e.g. 500,100."
    if values.get("irp_public_key"):
        error = irp_public_key_error(values["irp_public_key"])
        if error:
            errors["irp_public_key"] = error
    if values.get("einvoice_30_day_limit") and not values.get("einvoice_required"):
        errors["einvoice_30_day_limit"] = "The 30-day reporting limit applies only to suppliers that e-invoice."
    if values.get("lut_enabled") and not values.get("lut_reference"):
        errors["lut_reference"] = "Exports under LUT need the LUT's reference number (ARN)."
    if values.get("lut_for_sez") and not (values.get("lut_enabled") and values.get("lut_reference")):
        errors["lut_for_sez"] = (
            "SEZ supplies can be zero-rated only under a Letter of Undertaking: switch LUT on and enter its ARN "
            "first, or SEZ invoices would go out without IGST and without the ARN."
        )
    return errors


@transaction.atomic
def billing_settings_update(*, actor, **changes) -> BillingSettings:
    unknown = set(changes) - set(SETTINGS_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown billing settings: {', '.join(sorted(unknown))}.")
    current = BillingSettings.objects.select_for_update().filter(pk=1).first() or billing_settings_get()
    values = {name: getattr(current, name) for name in SETTINGS_FIELDS} | changes
    errors = billing_settings_validate(values)
    if errors:
        raise InvalidInput("The billing settings are not valid.", fields=errors)
    diff = {
        name: [str(getattr(current, name)), str(value)]
        for name, value in changes.items()
        if getattr(current, name) != value
    }
    for name, value in changes.items():
        setattr(current, name, value)
    current.save()
    if diff:
        audit.record(actor=actor, action="billing.settings_updated", target=current, details={"changed": diff})
    return current


def billing_profile_check(*, project: Project, plan, count: int = 1) -> None:
    """Admission check (registered by billing.apps): a paid VM needs the
    project's billing profile first, since every invoice needs the recipient's
    name, address and state (Rule 46; the place of supply is its state)."""
    if not (plan.price_hourly_running or plan.price_hourly_stopped):
        return
    if not BillingProfile.objects.filter(project=project).exists():
        raise Conflict(
            f"Project {project.name} has no billing profile yet. Enter the name, address and state its invoices "
            f"go to at {reverse('billing:profile', args=[project.slug])} before requesting a paid machine.",
            fields={"billing_profile": "Required before the first paid machine."},
        )


def billing_profile_validate(values: dict) -> tuple[dict, dict[str, str]]:
    """Normalised profile values and field errors (empty when valid)."""
    clean = {name: values.get(name, "") for name in PROFILE_FIELDS}
    for name in PROFILE_FIELDS:
        if isinstance(clean[name], str):
            clean[name] = clean[name].strip()
    clean["is_sez"] = bool(values.get("is_sez"))
    clean["registration_type"] = clean["registration_type"] or RegistrationType.REGULAR
    if clean["registration_type"] not in RegistrationType.values:
        choices = ", ".join(RegistrationType.values)
        return clean, {"registration_type": f"One of {choices}."}
    clean["country"] = (clean["country"] or "IN").upper()
    errors = {}
    for name in ("legal_name", "address_line1", "city"):
        if len(clean[name]) < 3:
            errors[name] = "Required (at least 3 characters)."
    if not re.fullmatch(r"[A-Z]{2}", clean["country"]):
        errors["country"] = "A two-letter ISO country code such as IN or US."
    elif clean["country"] != "IN":
        clean["state_code"] = OTHER_COUNTRIES
        if clean["gstin"]:
            errors["gstin"] = "A customer abroad has no GSTIN; leave it blank."
        if clean["is_sez"]:
            errors["is_sez"] = "An SEZ is in India; a customer abroad cannot be one."
        if not clean["pin"]:
            errors["pin"] = "Required (the postal code)."
    else:
        if not _INDIAN_PIN.match(clean["pin"]):
            errors["pin"] = "An Indian PIN code has 6 digits and does not start with 0."
        if clean["state_code"] not in STATES or clean["state_code"] == OTHER_COUNTRIES:
            errors["state_code"] = "Choose the state or union territory of the address."
        if clean["gstin"]:
            try:
                validate_gstin(clean["gstin"], clean["registration_type"])
            except GSTINError as exc:
                errors["gstin"] = str(exc)
            else:
                if "state_code" not in errors and clean["gstin"][:2] != clean["state_code"]:
                    errors["gstin"] = _gstin_state_error(clean["gstin"], clean["state_code"], "the address")
        elif clean["is_sez"]:
            errors["is_sez"] = "An SEZ unit or developer is registered: enter its GSTIN."
        if clean["is_sez"] and clean["registration_type"] != RegistrationType.REGULAR:
            errors["is_sez"] = "An SEZ unit or developer has a regular GSTIN, not a GST-TDS registration or UIN."
    if not clean["gstin"] and clean["registration_type"] != RegistrationType.REGULAR:
        errors["gstin"] = f"Enter the {RegistrationType(clean['registration_type']).label}."
    return clean, errors


@transaction.atomic
def billing_profile_update(*, project: Project, actor, **values) -> BillingProfile:
    """Create or replace a project's billing profile (all fields at once)."""
    clean, errors = billing_profile_validate(values)
    if errors:
        first = next(iter(errors.values()))
        raise InvalidInput(f"The billing profile is not valid: {first}", fields=errors)
    profile = BillingProfile.objects.select_for_update().filter(project=project).first()
    before = {name: getattr(profile, name) for name in PROFILE_FIELDS} if profile else {}
    profile = profile or BillingProfile(project=project)
    for name, value in clean.items():
        setattr(profile, name, value)
    profile.save()
    changed = {name: [before.get(name), value] for name, value in clean.items() if before.get(name) != value}
    if changed:
        audit.record(
            actor=actor, action="billing.profile_updated", target=profile, project=project, details={"changed": changed}
        )
    return profile


def irp_public_key_error(pem: str) -> str:
    """Why the IRP public key cannot be used ("" when it can): an RSA public
    key or certificate in PEM."""
    data = pem.strip().encode()
    try:
        key = x509.load_pem_x509_certificate(data).public_key() if b"CERTIFICATE" in data else load_pem_public_key(data)
    except ValueError:
        return "Paste the IRP's public key or certificate in PEM (-----BEGIN PUBLIC KEY----- ...)."
    if not isinstance(key, rsa.RSAPublicKey):
        return "The IRP signs with RSA (RS256): this is not an RSA key."
    return ""


def supplier_snapshot(settings: BillingSettings, registration: SupplierRegistration | None = None) -> dict:
    """The supplier as printed: the principal registration, or a further one
    (its GSTIN, state and address; the same legal entity and contacts)."""
    place = registration or settings
    gstin = place.gstin
    return {
        "legal_name": settings.legal_name,
        "trade_name": settings.trade_name,
        "address_line1": place.address_line1,
        "address_line2": place.address_line2,
        "city": place.city,
        "pin": place.pin,
        "state_code": place.state_code,
        "state_name": state_name(place.state_code),
        "gstin": gstin,
        "pan": gstin[2:12] if gstin else "",
        "email": settings.email,
        "phone": settings.phone,
        "lut_reference": settings.lut_reference if settings.lut_enabled else "",
        "authorised_signatory": settings.authorised_signatory,
    }


def customer_snapshot(project: Project, profile: BillingProfile | None) -> dict:
    if profile is None:
        return {"legal_name": project.name, "country": "IN", "state_code": "", "state_name": "", "gstin": ""}
    return {
        "legal_name": profile.legal_name,
        "address_line1": profile.address_line1,
        "address_line2": profile.address_line2,
        "city": profile.city,
        "pin": profile.pin,
        "state_code": profile.state_code,
        "state_name": state_name(profile.state_code),
        "country": profile.country,
        "gstin": profile.gstin,
        "registration_type": profile.registration_type,
        "is_sez": profile.is_sez,
        "email": profile.billing_email,
    }
