"""The operator's further GST registrations (one per state it supplies from)
and which hypervisors supply under each. Invoices for VMs on a hypervisor of
a registration carry its GSTIN, state and address and are numbered in its own
series (its prefixes); the principal registration is Billing settings'."""

from __future__ import annotations

from django.db import transaction

import audit
from compute.models import Hypervisor
from controlplane.errors import InvalidInput

from ..gst import GSTINError, prefix_error, validate_gstin
from ..models import SupplierLocation, SupplierRegistration
from ..selectors import billing_settings_get

REGISTRATION_FIELDS = ("gstin", "address_line1", "address_line2", "city", "pin", "invoice_prefix", "credit_note_prefix")


def supplier_registration_validate(values: dict, *, instance: SupplierRegistration | None = None) -> dict[str, str]:
    """Field errors of a further registration (empty when valid)."""
    settings, errors = billing_settings_get(), {}
    gstin = (values.get("gstin") or "").strip()
    try:
        validate_gstin(gstin)
    except GSTINError as exc:
        errors["gstin"] = str(exc)
    else:
        if not settings.gstin:
            errors["gstin"] = "Enter the principal GSTIN in Billing settings first."
        elif gstin[2:12] != settings.gstin[2:12]:
            errors["gstin"] = (
                f"A registration of the same business has the same PAN ({settings.gstin[2:12]}, from the principal "
                f"GSTIN {settings.gstin}); this GSTIN's PAN is {gstin[2:12]}."
            )
        elif gstin[:2] == settings.state_code:
            errors["gstin"] = f"The principal registration {settings.gstin} is already in state {gstin[:2]}."
    others = SupplierRegistration.objects.exclude(pk=instance.pk if instance else None)
    taken = {settings.invoice_prefix, settings.credit_note_prefix, settings.receipt_prefix}
    for row in others.values_list("invoice_prefix", "credit_note_prefix"):
        taken.update(row)
    for name in ("invoice_prefix", "credit_note_prefix"):
        prefix = values.get(name) or ""
        if prefix_error(prefix):
            errors[name] = prefix_error(prefix)
        elif prefix in taken:
            errors[name] = f"{prefix} is already the prefix of another series: each GSTIN numbers in its own series."
    if values.get("invoice_prefix") and values.get("invoice_prefix") == values.get("credit_note_prefix"):
        errors["credit_note_prefix"] = "Invoices and credit notes each need their own prefix."
    return errors


@transaction.atomic
def supplier_registration_save(
    *, actor, registration: SupplierRegistration | None = None, hypervisors=None, **values
) -> SupplierRegistration:
    """Create or change a further registration and, when ``hypervisors`` is
    given, the hypervisors supplying under it (moved from any other one)."""
    errors = supplier_registration_validate(values, instance=registration)
    if errors:
        raise InvalidInput(f"The supplier registration is not valid: {next(iter(errors.values()))}", fields=errors)
    registration = registration or SupplierRegistration()
    before = {name: getattr(registration, name) for name in REGISTRATION_FIELDS}
    for name in REGISTRATION_FIELDS:
        setattr(registration, name, (values.get(name) or "").strip())
    registration.save()
    changed = {name: [before[name], getattr(registration, name)] for name in REGISTRATION_FIELDS}
    changed = {name: pair for name, pair in changed.items() if pair[0] != pair[1]}
    if hypervisors is not None:
        wanted = {hv.pk for hv in hypervisors}
        current = set(registration.locations.values_list("hypervisor_id", flat=True))
        if wanted != current:
            SupplierLocation.objects.filter(registration=registration).exclude(hypervisor_id__in=wanted).delete()
            SupplierLocation.objects.filter(hypervisor_id__in=wanted).exclude(registration=registration).delete()
            SupplierLocation.objects.bulk_create(
                [SupplierLocation(registration=registration, hypervisor_id=pk) for pk in wanted - current]
            )
            names = Hypervisor.objects.filter(pk__in=wanted).order_by("name").values_list("name", flat=True)
            changed["hypervisors"] = list(names)
    if changed:
        audit.record(
            actor=actor, action="billing.registration_saved", target=registration, details={"changed": changed}
        )
    return registration
