"""Tax invoices and credit notes.

An invoice collects a project's uninvoiced usage charges, turns their hourly
records into lines (one per VM, plan, price and running/stopped), computes
each tax head per line, numbers itself from the FY series under a row lock and
copies supplier, customer and place of supply into itself. The wallet was
debited hour by hour; the invoice posts the few paise of difference (rounding
per line instead of per charge, and the round-off) so that the debits of its
usage equal its total exactly.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Exists, OuterRef, Sum
from django.utils import timezone

import audit
from accounts.models import Project
from controlplane.errors import Conflict, InvalidInput, ServiceError

from ..choices import DocumentKind, EntryKind
from ..gst import Heads, credit_note_deadline, document_totals, tax_heads
from ..models import (
    BillingSettings,
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceLine,
    SupplierRegistration,
    UsageCharge,
    UsageRecord,
)
from ..money import ZERO, format_inr, paise
from ..periods import local_date, month_of, month_start
from ..selectors import (
    OTHER_RECORDS,
    billing_settings_get,
    invoice_creditable,
    invoice_due_projects,
    open_charge_kinds,
    registration_for_gstin,
    treatment_for,
    uncharged_project_ids,
)
from .backup_storage import backup_storage_charge_locked, backup_storage_lines, backup_storage_meter
from .bandwidth import transfer_charge_locked, transfer_lines, transfer_meter
from .charging import usage_charge_locked
from .documents import numbered, parties, parties_of, totals_fields
from .ledger import amount_parse, entry_post, wallet_lock, wallet_profile
from .metering import meter_horizon, usage_meter
from .notifications import operator_alert
from .snapshot_storage import snapshot_storage_charge_locked, snapshot_storage_lines, snapshot_storage_meter
from .suspension import suspension_lift_if_paid

logger = logging.getLogger(__name__)
HOURS = Decimal("0.0001")


def _require_supplier(settings: BillingSettings) -> None:
    required = {"legal_name": "legal name", "address_line1": "address", "pin": "PIN", "gstin": "GSTIN"}
    missing = [label for name, label in required.items() if not getattr(settings, name)]
    if missing:
        raise Conflict(f"Set the supplier's {', '.join(missing)} in Billing settings before issuing GST documents.")


def _heads_fields(heads: Heads) -> dict:
    return {
        "taxable": heads.taxable,
        "gst_rate": heads.gst_rate,
        "cgst_rate": heads.cgst_rate,
        "cgst": heads.cgst,
        "sgst_rate": heads.sgst_rate,
        "sgst": heads.sgst,
        "igst_rate": heads.igst_rate,
        "igst": heads.igst,
        "total": heads.total,
    }


def _usage_lines(charge_ids: list[int], regime: str) -> list[InvoiceLine]:
    groups = (
        UsageRecord.objects.filter(charge_id__in=charge_ids)
        .values(
            "vm_id",
            "vm__name",
            "plan_id",
            "plan__name",
            "item",
            "price_running",
            "price_stopped",
            "sac_code",
            "gst_rate",
        )
        .annotate(running=Sum("running_seconds"), stopped=Sum("stopped_seconds"))
        .order_by("vm__name", "vm_id", "plan__name", "item", "price_running", "price_stopped", "gst_rate")
    )
    lines = []
    for group in groups:
        for state, seconds, price in (
            ("running", group["running"], group["price_running"]),
            ("stopped", group["stopped"], group["price_stopped"]),
        ):
            if not seconds:
                continue
            heads = tax_heads(taxable=seconds * price / 3600, gst_rate=group["gst_rate"], regime=regime)
            lines.append(
                InvoiceLine(
                    position=len(lines) + 1,
                    description=(
                        f"Additional IP {group['item'].split(':', 2)[2]} of {group['vm__name']}"
                        if group["item"]
                        else f"Cloud server {group['vm__name']} ({group['plan__name']} plan), {state}"
                    ),
                    sac_code=group["sac_code"],
                    quantity=(Decimal(seconds) / 3600).quantize(HOURS),
                    unit="HRS",
                    rate=price,
                    vm_id=group["vm_id"],
                    plan_id=group["plan_id"],
                    **_heads_fields(heads),
                )
            )
    return lines


def _supplied_under(registration: SupplierRegistration | None) -> dict:
    """Usage records of VMs on the hypervisors of ``registration`` (None: of no further registration)."""
    if registration is None:
        return {"vm__hypervisor__supplier_location__isnull": True}
    return {"vm__hypervisor__supplier_location__registration": registration}


def _due_now(project: Project, registration: SupplierRegistration | None, before: datetime | None) -> bool:
    """Has the project uncharged usage records or uninvoiced charges supplied under ``registration``?"""
    uncharged = UsageRecord.objects.filter(project=project, charge__isnull=True, **_supplied_under(registration))
    charges = UsageCharge.objects.filter(project=project, invoice__isnull=True, registration=registration)
    if before is not None:
        uncharged = uncharged.filter(hour_start__lt=before)
        charges = charges.filter(period__lt=month_of(before))
    return uncharged.exists() or charges.exists()


def _charge_locked(*, wallet, settings: BillingSettings, before: datetime | None, at: datetime) -> None:
    """Charge what the locked wallet's project has uncharged: usage, transfer, stored copies."""
    usage_charge_locked(wallet=wallet, settings=settings, before=before)
    transfer_charge_locked(wallet=wallet, settings=settings, now=at)
    snapshot_storage_charge_locked(wallet=wallet, settings=settings, now=at)
    backup_storage_charge_locked(wallet=wallet, settings=settings, now=at)


def _open_charges(
    project: Project, before: datetime | None, kinds: dict[int, set[str]] | None = None
) -> dict[int | None, list[tuple]]:
    """The project's uninvoiced charges by supplier registration id (None: the principal one):
    ``(id, total, hour_from, hour_to, kinds)``, ``kinds`` the kinds of records besides usage
    hours it holds (``OTHER_RECORDS``). Taken from ``kinds`` (``open_charge_kinds``, read when a
    run began; a charge made since gets every kind, to be asked), else asked here."""
    charges = UsageCharge.objects.filter(project=project, invoice__isnull=True)
    if before is not None:
        charges = charges.filter(period__lt=month_of(before))
    if kinds is None:
        has = {kind: Exists(model.objects.filter(charge=OuterRef("pk"))) for kind, model in OTHER_RECORDS.items()}
        charges = charges.annotate(**has)
    fields = ["registration_id", "id", "total", "hour_from", "hour_to"]
    by_registration: dict[int | None, list[tuple]] = defaultdict(list)
    for registration_id, charge_id, *row in charges.values_list(*fields, *(OTHER_RECORDS if kinds is None else ())):
        if kinds is None:
            held = {kind for kind, has in zip(OTHER_RECORDS, row[3:], strict=True) if has}
        else:
            held = kinds.get(charge_id, set(OTHER_RECORDS))
        by_registration[registration_id].append((charge_id, *row[:3], held))
    return by_registration


def _lines(rows: list[tuple], regime: str) -> list[InvoiceLine]:
    """The lines of these charges (``_open_charges`` rows): usage hours, then the other kinds
    they hold (asking only for those)."""
    charge_ids = [row[0] for row in rows]
    lines = _usage_lines(charge_ids, regime)
    for kind, make in (
        ("transfer", transfer_lines),
        ("snapshots", snapshot_storage_lines),
        ("backups", backup_storage_lines),
    ):
        if any(kind in row[4] for row in rows):
            lines += make(charge_ids, regime, first_position=len(lines) + 1)
    return lines


@transaction.atomic
def invoices_issue(
    *,
    project: Project,
    actor,
    before: datetime | None = None,
    at: datetime | None = None,
    registrations: list[SupplierRegistration | None] | None = None,
    settings: BillingSettings | None = None,
    charge: bool = True,
    kinds: dict[int, set[str]] | None = None,
) -> list[Invoice]:
    """Invoice the project's uninvoiced usage: one invoice per supplier
    registration its VMs' hypervisors supply under (all or none); ``before``:
    only usage of months that begin before it (the monthly run), else
    everything metered (on demand). ``registrations``: only these (None in it:
    the principal registration; default all, the principal one first, then by
    GSTIN). ``charge``: first charge what is still uncharged (False: the caller
    knows nothing is, the monthly run after the hourly job). ``settings`` and
    ``kinds`` (``open_charge_kinds``): read once by a run of many projects.

    Lock order: wallet, document series in a fixed order, audit chain. Charging
    audits, so with ``charge`` the numbers of the registrations that have
    something to invoice are taken before it; without, as late as possible
    (after the lines are made), still all before the first invoice is audited."""
    at = at or timezone.now()
    settings = settings or billing_settings_get()
    _require_supplier(settings)
    wallet = wallet_lock(project_id=project.pk)
    if registrations is None:
        registrations = [None, *SupplierRegistration.objects.order_by("gstin")]
    numbers = {}
    if charge:
        for registration in registrations:
            if _due_now(project, registration, before):
                numbers[registration] = _invoice_number(settings, registration, at, actor)
        _charge_locked(wallet=wallet, settings=settings, before=before, at=at)
    open_charges = _open_charges(project, before, kinds)
    profile = wallet_profile(wallet)
    drafts = []
    for registration in registrations:
        rows = open_charges.get(registration.pk if registration else None)
        if charge and registration not in numbers:
            continue
        if not rows:
            if registration in numbers:  # would leave a gap in the series: roll back
                raise Conflict(f"Project {project.pk}: nothing left to invoice after charging; not issued.")
            continue
        treatment = treatment_for(settings=settings, profile=profile, registration=registration)
        drafts.append((registration, treatment, rows, _lines(rows, treatment.regime)))
    for registration, *_ in drafts:
        if registration not in numbers:
            numbers[registration] = _invoice_number(settings, registration, at, actor)
    return [
        _invoice_create(
            wallet=wallet,
            settings=settings,
            registration=registration,
            treatment=treatment,
            rows=rows,
            lines=lines,
            number=numbers[registration],
            actor=actor,
            at=at,
        )
        for registration, treatment, rows, lines in drafts
    ]


def _invoice_number(settings: BillingSettings, registration: SupplierRegistration | None, at: datetime, actor) -> dict:
    prefix = registration.invoice_prefix if registration else settings.invoice_prefix
    return numbered(kind=DocumentKind.INVOICE, prefix=prefix, at=at, actor=actor)


def _invoice_create(
    *, wallet, settings, registration, treatment, rows: list[tuple], lines: list[InvoiceLine], number: dict, actor, at
) -> Invoice:
    """Write one invoice of a locked wallet's charges (``_open_charges`` rows) with its lines,
    link the charges, post the settlement and audit."""
    project = wallet.project
    charged = sum((row[1] for row in rows), ZERO)
    totals = document_totals(_line_heads(lines))
    invoice = Invoice.objects.create(
        **number,
        **parties(
            settings=settings,
            project=project,
            profile=wallet_profile(wallet),
            treatment=treatment,
            registration=registration,
        ),
        **totals_fields(totals),
        project=project,
        period_start=min(row[2] for row in rows),
        period_end=max(row[3] for row in rows),
    )
    for line in lines:
        line.invoice = invoice
    InvoiceLine.objects.bulk_create(lines)
    UsageCharge.objects.filter(id__in=[row[0] for row in rows]).update(invoice=invoice)
    difference = totals.total - charged
    if difference:
        entry_post(
            wallet=wallet,
            kind=EntryKind.USAGE,
            amount=-difference,
            description=f"Invoice {invoice.number}: rounding and round-off",
            actor=actor,
            invoice=invoice,
            at=at,
            settings=settings,
        )
        if difference < 0:  # charged more than the invoice's total: the rest goes back
            suspension_lift_if_paid(wallet=wallet, actor=actor)
    audit.record(
        actor=actor,
        action="invoice.issued",
        target=invoice,
        project=project,
        details={
            "number": invoice.number,
            "total": str(invoice.total),
            "period": [invoice.period_start.isoformat(), invoice.period_end.isoformat()],
            "settlement": str(-difference),
        },
    )
    return invoice


def invoice_issue(
    *,
    project: Project,
    actor,
    before: datetime | None = None,
    at: datetime | None = None,
    registration: SupplierRegistration | None = None,
) -> Invoice | None:
    """Invoice the project's uninvoiced usage supplied under ``registration``
    (None: the principal registration), as ``invoices_issue`` does for one
    registration. Returns None when there is nothing to invoice. Usage under
    other registrations is charged too, and invoiced by their own call."""
    issued = invoices_issue(project=project, actor=actor, before=before, at=at, registrations=[registration])
    return issued[0] if issued else None


def _line_heads(lines) -> list[Heads]:
    return [
        Heads(
            line.taxable,
            line.gst_rate,
            cgst_rate=line.cgst_rate,
            cgst=line.cgst,
            sgst_rate=line.sgst_rate,
            sgst=line.sgst,
            igst_rate=line.igst_rate,
            igst=line.igst,
        )
        for line in lines
    ]


def invoice_issue_monthly(
    *, now: datetime | None = None, actor="system:billing", deadline: float | None = None
) -> list[Invoice]:
    """Invoice last month's (and any older uninvoiced) usage of every project
    whose metering has passed the month's end. Each project in its own
    transaction; one project's problem (logged) does not stop the others.
    Stops at ``deadline`` (time.monotonic()); the next run continues.

    Read once for the run: the settings, the registrations, which projects
    have anything uncharged (after metering every kind once), which open
    charges hold records besides usage hours. Only those are
    charged in their transaction (the hourly job has charged the others); a
    record that turns up later is charged and invoiced by the next runs."""
    now = now or timezone.now()
    cutoff = month_start(month_of(now))
    settings = billing_settings_get()
    usage_meter(until=min(meter_horizon(now), cutoff), starts_at=settings.metering_starts_at)
    for meter in (transfer_meter, snapshot_storage_meter, backup_storage_meter):
        meter(settings=settings, now=now)
    registrations = [None, *SupplierRegistration.objects.order_by("gstin")]
    uncharged = uncharged_project_ids(before=cutoff)
    kinds = open_charge_kinds(before=cutoff)
    invoices, failures = [], []
    for project in invoice_due_projects(cutoff=cutoff):
        if deadline is not None and time.monotonic() > deadline:
            break
        try:
            issued = invoices_issue(
                project=project,
                actor=actor,
                before=cutoff,
                at=now,
                registrations=registrations,
                settings=settings,
                charge=project.pk in uncharged,
                kinds=kinds,
            )
        except ServiceError as exc:
            logger.error("invoice for project %s not issued: %s", project.pk, exc.message)
            audit.record(
                actor=actor,
                action="invoice.not_issued",
                target=project,
                project=project,
                details={"error": exc.message, "before": cutoff.isoformat()},
            )
            failures.append(f"- {project.name} (project {project.pk}): {exc.message}")
            continue
        invoices += issued
    if failures:
        operator_alert(
            subject=f"{len(failures)} invoice(s) could not be issued",
            body=(
                "The monthly invoicing run could not invoice these projects; their usage stays uninvoiced "
                "until the cause is fixed; the next scheduled run (billing.tasks) retries them:\n\n"
                + "\n".join(failures)
            ),
        )
    return invoices


def _credit_note_prefix(settings: BillingSettings, invoice: Invoice) -> str:
    """The credit-note series of the registration the invoice was issued under."""
    registration = registration_for_gstin(invoice.supplier.get("gstin", ""))
    return registration.credit_note_prefix if registration else settings.credit_note_prefix


def _credit_note_date_check(*, invoice: Invoice, at: datetime, backdate_reason: str) -> None:
    """s.34: not after 30 November following the invoice's financial year; not
    dated before the invoice unless an operator records why."""
    day, deadline = local_date(at), credit_note_deadline(invoice.financial_year)
    if day > deadline:
        raise Conflict(
            f"Invoice {invoice.number} is of {invoice.financial_year}: credit notes against it could be issued "
            f"until {deadline:%d/%m/%Y} (CGST Act s.34(2)). Settle with the customer outside GST instead."
        )
    if day < invoice.date and not backdate_reason.strip():
        raise InvalidInput(
            f"A credit note cannot be dated {day:%d/%m/%Y}, before invoice {invoice.number} of "
            f"{invoice.date:%d/%m/%Y}; give a reason to override.",
            fields={"backdate_reason": "Required to date a credit note before its invoice."},
        )


@transaction.atomic
def credit_note_issue(
    *,
    invoice: Invoice,
    reason: str,
    actor,
    amount=None,
    gst_rate=None,
    at: datetime | None = None,
    backdate_reason: str = "",
) -> CreditNote:
    """Credit ``amount`` of taxable value (before GST) against an invoice, at
    ``gst_rate`` when the invoice has several; ``amount=None`` credits all that
    is left. Same parties and tax treatment as the invoice; the total goes to
    the wallet. Dating it before the invoice needs ``backdate_reason`` (audited)."""
    if not reason.strip():
        raise InvalidInput("Say why the credit note is issued.", fields={"reason": "Required."})
    at = at or timezone.now()
    _credit_note_date_check(invoice=invoice, at=at, backdate_reason=backdate_reason)
    settings = billing_settings_get()
    _require_supplier(settings)
    wallet = wallet_lock(project_id=invoice.project_id)
    left = invoice_creditable(invoice=invoice)
    if amount is None:
        credits = {rate: value for rate, (value, _) in left.items() if value > 0}
    else:
        amount = amount_parse(amount)
        if amount <= 0:
            raise InvalidInput("Credit a positive amount.", fields={"amount": "Must be positive."})
        if gst_rate is None and len(left) == 1:
            gst_rate = next(iter(left))
        if gst_rate is None or Decimal(gst_rate) not in left:
            rates = ", ".join(f"{rate}%" for rate in left)
            raise InvalidInput(
                f"Choose the GST rate to credit: the invoice has {rates}.", fields={"gst_rate": "Required."}
            )
        gst_rate = Decimal(gst_rate)
        if amount > left[gst_rate][0]:
            raise Conflict(
                f"Only ₹{format_inr(left[gst_rate][0])} of invoice {invoice.number}'s taxable value at {gst_rate}% "
                "is left to credit."
            )
        credits = {gst_rate: amount}
    if not credits:
        raise Conflict(f"Invoice {invoice.number} is fully credited already.")
    lines = [
        CreditNoteLine(
            position=position,
            description=f"Credit against invoice {invoice.number} dated {invoice.date:%d/%m/%Y}: {reason}"[:255],
            sac_code=left[rate][1],
            quantity=Decimal("1"),
            unit="OTH",
            rate=paise(value),
            **_heads_fields(tax_heads(taxable=value, gst_rate=rate, regime=invoice.regime)),
        )
        for position, (rate, value) in enumerate(sorted(credits.items()), start=1)
    ]
    totals = document_totals(_line_heads(lines))
    note = CreditNote.objects.create(
        **numbered(kind=DocumentKind.CREDIT_NOTE, prefix=_credit_note_prefix(settings, invoice), at=at, actor=actor),
        **parties_of(invoice),
        **totals_fields(totals),
        project_id=invoice.project_id,
        invoice=invoice,
        reason=reason,
    )
    for line in lines:
        line.credit_note = note
    CreditNoteLine.objects.bulk_create(lines)
    if note.total:
        entry_post(
            wallet=wallet,
            kind=EntryKind.CREDIT_NOTE,
            amount=note.total,
            description=f"Credit note {note.number} against invoice {invoice.number}",
            actor=actor,
            reason=reason,
            credit_note=note,
            at=at,
            settings=settings,
        )
        suspension_lift_if_paid(wallet=wallet, actor=actor)
    audit.record(
        actor=actor,
        action="credit_note.issued",
        target=note,
        project=invoice.project_id,
        details={
            "number": note.number,
            "invoice": invoice.number,
            "total": str(note.total),
            "reason": reason,
            **({"backdated": backdate_reason} if note.date < invoice.date else {}),
        },
    )
    return note
