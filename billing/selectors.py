"""Reads of the billing domain: settings, balances, ledger, usage, documents,
prices, and the "who is due" queries of the periodic jobs. Nothing here
imports ``billing.services``: services read through selectors, never back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Count, Min, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce, TruncDate

from accounts.choices import Role
from accounts.models import Membership, Project
from compute.choices import VMStatus
from controlplane.errors import Conflict, NotFound

from .choices import EInvoiceStatus, Regime, SupplyType
from .gst import Customer, Heads, Treatment, tax_heads, treatment
from .models import (
    BackupStorageRecord,
    BillingProfile,
    BillingSettings,
    CreditNote,
    CreditNoteLine,
    EInvoiceResponse,
    Invoice,
    LedgerEntry,
    MeterCursor,
    ReceiptVoucher,
    SnapshotStorageRecord,
    SupplierLocation,
    SupplierRegistration,
    TdsDeduction,
    TransferRecord,
    UsageCharge,
    UsageRecord,
    Wallet,
)
from .money import ZERO, paise
from .periods import billing_tz, month_of, month_start, next_month

HOURS = Decimal("0.01")


def billing_settings_get() -> BillingSettings:
    """The supplier settings (one row, created with defaults on first use)."""
    settings, _ = BillingSettings.objects.get_or_create(pk=1)
    return settings


def customer_of(profile: BillingProfile | None) -> Customer:
    if profile is None:
        return Customer()
    return Customer(country=profile.country, state_code=profile.state_code, gstin=profile.gstin, is_sez=profile.is_sez)


def treatment_for(
    *, settings: BillingSettings, profile: BillingProfile | None, registration: SupplierRegistration | None = None
) -> Treatment:
    """The GST treatment (place of supply, regime, endorsement) of a customer
    now, supplied from ``registration`` (None: the principal registration)."""
    return treatment(
        supplier_state=registration.state_code if registration else settings.state_code,
        customer=customer_of(profile),
        lut=settings.lut_enabled,
        lut_for_sez=settings.lut_for_sez,
    )


def registration_by_hypervisor() -> dict[int, int]:
    """Hypervisor id → the supplier registration it supplies under (hypervisors
    not listed supply under the principal registration)."""
    return dict(SupplierLocation.objects.values_list("hypervisor_id", "registration_id"))


def registration_for_gstin(gstin: str) -> SupplierRegistration | None:
    """The further registration with this GSTIN (None: the principal one)."""
    return SupplierRegistration.objects.filter(gstin=gstin).first() if gstin else None


def supplier_gstins() -> list[str]:
    """Every GSTIN the operator supplies under, the principal one first."""
    principal = billing_settings_get().gstin
    return [principal, *SupplierRegistration.objects.exclude(gstin=principal).values_list("gstin", flat=True)]


def wallet_get(*, project: Project) -> Wallet:
    """The project's wallet (an unsaved empty one if it never had money)."""
    return Wallet.objects.filter(project=project).first() or Wallet(project=project)


def ledger_list(*, project: Project) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(project=project).select_related("invoice", "credit_note", "receipt")


def profile_get(*, project: Project) -> BillingProfile | None:
    return BillingProfile.objects.filter(project=project).first()


def _month_records(project: Project, month: date) -> QuerySet[UsageRecord]:
    return UsageRecord.objects.filter(
        project=project, hour_start__gte=month_start(month), hour_start__lt=month_start(next_month(month))
    )


def _hours(seconds: int | None) -> Decimal:
    return (Decimal(seconds or 0) / 3600).quantize(HOURS)


def usage_by_day(*, project: Project, month: date) -> list[dict]:
    """Per billing-zone day of ``month``: running and stopped hours and the
    amount before GST (exact to the paisa once invoiced per line)."""
    rows = (
        _month_records(project, month)
        .annotate(day=TruncDate("hour_start", tzinfo=billing_tz()))
        .values("day")
        .annotate(  # server hours only; the amount includes additional IPs
            running=Sum("running_seconds", filter=Q(item="")),
            stopped=Sum("stopped_seconds", filter=Q(item="")),
            amount=Sum("amount"),
        )
        .order_by("day")
    )
    return [
        {
            "day": row["day"],
            "running_hours": _hours(row["running"]),
            "stopped_hours": _hours(row["stopped"]),
            "amount": paise(row["amount"]),
        }
        for row in rows
    ]


def usage_by_vm(*, project: Project, month: date) -> list[dict]:
    rows = (
        _month_records(project, month)
        .values("vm_id", "vm__name", "plan__name", "item")
        .annotate(
            running=Sum("running_seconds"), stopped=Sum("stopped_seconds"), amount=Sum("amount"), hours=Count("id")
        )
        .order_by("vm__name", "vm_id", "plan__name", "item")
    )
    return [
        {
            "vm_id": row["vm_id"],
            "vm": row["vm__name"],
            # an additional IP's row: its hours held are its "running" hours
            "plan": f"{row['plan__name']} + IP {row['item'].split(':', 2)[2]}" if row["item"] else row["plan__name"],
            "running_hours": _hours(row["running"]),
            "stopped_hours": _hours(row["stopped"]),
            "amount": paise(row["amount"]),
        }
        for row in rows
    ]


def invoices_with_compliance(invoices: QuerySet[Invoice]) -> QuerySet[Invoice]:
    """Each invoice with its IRN registration (``irn``, ``ack_no``, ``ack_date``)
    and the income-tax TDS recorded against it (``tds_total``), in the one query."""
    registered = EInvoiceResponse.objects.filter(invoice=OuterRef("pk"), status=EInvoiceStatus.REGISTERED)
    tds = (
        TdsDeduction.objects.filter(invoice=OuterRef("pk"))
        .values("invoice")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return invoices.annotate(
        irn=Subquery(registered.values("irn")[:1]),
        ack_no=Subquery(registered.values("ack_no")[:1]),
        ack_date=Subquery(registered.values("ack_date")[:1]),
        tds_total=Coalesce(Subquery(tds), ZERO),
    )


def invoice_list(*, project: Project) -> QuerySet[Invoice]:
    return invoices_with_compliance(Invoice.objects.filter(project=project))


def invoice_get(*, project: Project, pk: int) -> Invoice:
    invoice = invoices_with_compliance(Invoice.objects.filter(project=project, pk=pk)).prefetch_related("lines").first()
    if invoice is None:
        raise NotFound("No such invoice.")
    return invoice


def einvoice_registration(*, invoice: Invoice) -> EInvoiceResponse | None:
    """The invoice's IRN registration (None: not registered)."""
    return EInvoiceResponse.objects.filter(invoice=invoice, status=EInvoiceStatus.REGISTERED).first()


def einvoice_pending(*, invoice: Invoice, settings: BillingSettings | None = None) -> bool:
    """Is the invoice waiting for its IRN (the operator e-invoices, it is not B2C, none imported yet)?"""
    settings = settings or billing_settings_get()
    if not settings.einvoice_required or invoice.supply_type == SupplyType.B2C:
        return False
    return einvoice_registration(invoice=invoice) is None


def invoice_release_get(*, project: Project, pk: int) -> Invoice:
    """An invoice the customer may have: not one still waiting for its IRN
    (Rule 48(5): without it, it is not a valid invoice)."""
    invoice = invoice_get(project=project, pk=pk)
    if einvoice_pending(invoice=invoice):
        raise Conflict(
            f"Invoice {invoice.number} is being registered on the Invoice Registration Portal; it is available "
            "with its IRN and QR code once registered."
        )
    return invoice


def credit_note_list(*, project: Project) -> QuerySet[CreditNote]:
    return CreditNote.objects.filter(project=project).select_related("invoice")


def credit_note_get(*, project: Project, pk: int) -> CreditNote:
    note = CreditNote.objects.filter(project=project, pk=pk).select_related("invoice").first()
    if note is None:
        raise NotFound("No such credit note.")
    return note


def receipt_list(*, project: Project) -> QuerySet[ReceiptVoucher]:
    return ReceiptVoucher.objects.filter(project=project)


def receipt_get(*, project: Project, pk: int) -> ReceiptVoucher:
    receipt = ReceiptVoucher.objects.filter(project=project, pk=pk).first()
    if receipt is None:
        raise NotFound("No such receipt.")
    return receipt


@dataclass(frozen=True)
class PlanPrice:
    """What a plan costs a project, with GST as its place of supply says."""

    running: Heads  # one hour running
    stopped: Heads  # one hour stopped
    monthly: Heads  # hours_per_month running
    period: Heads  # ``hours`` running (the pre-check amount)
    hours: int
    hours_per_month: int
    regime: str
    tax_label: str

    @property
    def period_total(self) -> Decimal:
        return self.period.total


def plan_price_for_project(*, plan, project: Project, hours: int | None = None) -> PlanPrice:
    """Price per hour and per month with GST, for the request wizard and the
    wallet pre-check (``hours`` defaults to the configured pre-check hours)."""
    return plan_prices_for_project(plans=[plan], project=project, hours=hours)[plan.pk]


def plan_prices_for_project(*, plans, project: Project, hours: int | None = None) -> dict[int, PlanPrice]:
    """``plan_price_for_project`` of several plans at once (two queries however many plans)."""
    settings = billing_settings_get()
    treatment = treatment_for(settings=settings, profile=profile_get(project=project))
    hours = settings.precheck_hours if hours is None else hours
    tax_label = f"CGST+{treatment.state_tax_label}" if treatment.regime == Regime.INTRA else "IGST"

    def price(plan) -> PlanPrice:
        def heads(amount: Decimal) -> Heads:
            return tax_heads(taxable=amount, gst_rate=plan.gst_rate, regime=treatment.regime)

        return PlanPrice(
            running=heads(plan.price_hourly_running),
            stopped=heads(plan.price_hourly_stopped),
            monthly=heads(plan.price_hourly_running * settings.hours_per_month),
            period=heads(plan.price_hourly_running * hours),
            hours=hours,
            hours_per_month=settings.hours_per_month,
            regime=treatment.regime,
            tax_label=tax_label,
        )

    return {plan.pk: price(plan) for plan in plans}


def month_usage_total(*, project: Project, month: date) -> Decimal:
    """What the project's metered usage in ``month`` comes to so far, before GST."""
    return paise(_month_records(project, month).aggregate(total=Sum("amount"))["total"] or ZERO)


def ledger_problems(*, project_ids: list[int] | None = None) -> list[str]:
    """Every wallet whose cached balance differs from the sum of its entries,
    or whose entries' running balances do not chain. Empty means balanced."""
    wallets = Wallet.objects.all() if project_ids is None else Wallet.objects.filter(project_id__in=project_ids)
    sums = dict(
        LedgerEntry.objects.filter(project_id__in=wallets.values("project_id"))
        .values("project_id")
        .annotate(total=Sum("amount"))
        .values_list("project_id", "total")
    )
    problems = []
    for wallet in wallets.order_by("project_id"):
        total = sums.get(wallet.project_id) or ZERO
        if total != wallet.balance:
            problems.append(f"project {wallet.project_id}: balance {wallet.balance} but entries sum to {total}")
            continue
        running = ZERO
        for entry in (
            LedgerEntry.objects.filter(project_id=wallet.project_id).order_by("id").only("amount", "balance_after")
        ):
            running += entry.amount
            if entry.balance_after != running:
                problems.append(
                    f"project {wallet.project_id}: entry {entry.pk} says {entry.balance_after}, sum is {running}"
                )
                break
    return problems


def wallet_balance(*, project: Project) -> Decimal:
    """The cached balance (zero for a project that never had a wallet)."""
    return Wallet.objects.filter(project=project).values_list("balance", flat=True).first() or ZERO


def billing_recipients(*, project: Project) -> list[str]:
    """Who hears about the project's money: owners, admins and the profile's billing email."""
    recipients = set(
        Membership.objects.filter(project=project, role__in=[Role.OWNER, Role.ADMIN]).values_list(
            "user__email", flat=True
        )
    )
    profile = profile_get(project=project)
    if profile and profile.billing_email:
        recipients.add(profile.billing_email)
    return sorted(recipients)


def suspension_due_project_ids(*, negative_before: datetime) -> list[int]:
    """Projects to suspend (below zero since before ``negative_before`` and not
    suspended by billing yet) and projects billing suspended that still have
    active VMs (stragglers to stop), in project order."""
    due = Wallet.objects.filter(negative_since__lte=negative_before, suspended_by_billing=False).values_list(
        "project_id", flat=True
    )
    suspended_with_vms = Wallet.objects.filter(
        suspended_by_billing=True, project__vms__status=VMStatus.ACTIVE
    ).values_list("project_id", flat=True)
    return sorted({*due, *suspended_with_vms})


def usage_uncharged_project_ids() -> list[int]:
    """Projects with metered usage not yet debited, in project order."""
    return list(
        UsageRecord.objects.filter(charge__isnull=True)
        .order_by("project_id")
        .values_list("project_id", flat=True)
        .distinct()
    )


def invoice_due_projects(*, cutoff: datetime) -> QuerySet[Project]:
    """Projects with usage before ``cutoff`` (a month's start) still to invoice,
    leaving out those whose metering has not reached ``cutoff`` yet."""
    pending = {
        *UsageCharge.objects.filter(invoice__isnull=True, period__lt=month_of(cutoff)).values_list(
            "project_id", flat=True
        ),
        *UsageRecord.objects.filter(charge__isnull=True, hour_start__lt=cutoff).values_list("project_id", flat=True),
    }
    behind = set(
        MeterCursor.objects.filter(project_id__in=pending, closed=False, metered_until__lt=cutoff).values_list(
            "project_id", flat=True
        )
    )
    return Project.objects.filter(pk__in=pending - behind).order_by("pk")


OTHER_RECORDS = {"transfer": TransferRecord, "snapshots": SnapshotStorageRecord, "backups": BackupStorageRecord}


def open_charge_kinds(*, before: datetime) -> dict[int, set[str]]:
    """Every uninvoiced charge of the months before ``before``, by id: the kinds of records
    besides usage hours it holds (``OTHER_RECORDS``; most hold none). A charge's records are
    linked when it is made and stay, so this holds for these charges until they are invoiced."""
    charges = UsageCharge.objects.filter(invoice__isnull=True, period__lt=month_of(before))
    kinds: dict[int, set[str]] = {charge_id: set() for charge_id in charges.values_list("id", flat=True)}
    for kind, model in OTHER_RECORDS.items():
        held = model.objects.filter(charge_id__in=list(kinds)).values_list("charge_id", flat=True).order_by()
        for charge_id in held.distinct():
            kinds[charge_id].add(kind)
    return kinds


def uncharged_project_ids(*, before: datetime) -> set[int]:
    """Projects with records not charged yet: usage of hours before ``before``,
    transfer over-use, snapshot or backup storage (any month)."""
    ids = set(
        UsageRecord.objects.filter(charge__isnull=True, hour_start__lt=before)
        .values_list("project_id", flat=True)
        .order_by()
        .distinct()
    )
    for model in OTHER_RECORDS.values():
        ids.update(model.objects.filter(charge__isnull=True).values_list("project_id", flat=True).order_by().distinct())
    return ids


def invoice_creditable(*, invoice: Invoice) -> dict[Decimal, tuple[Decimal, str]]:
    """Taxable value of ``invoice`` still creditable per GST rate, with the rate's SAC."""
    issued = {
        rate: (taxable, sac)
        for rate, taxable, sac in invoice.lines.values("gst_rate")
        .annotate(taxable=Sum("taxable"), sac=Min("sac_code"))
        .values_list("gst_rate", "taxable", "sac")
    }
    credited = dict(
        CreditNoteLine.objects.filter(credit_note__invoice=invoice)
        .values("gst_rate")
        .annotate(taxable=Sum("taxable"))
        .values_list("gst_rate", "taxable")
    )
    return {rate: (taxable - credited.get(rate, ZERO), sac) for rate, (taxable, sac) in issued.items()}


def ledger_debits_since(*, since: datetime) -> list[dict]:
    """Negative ledger entries created since ``since``, by kind: ``kind``,
    ``n`` (count) and ``total`` (a negative sum). Uses the created_at index."""
    return list(
        LedgerEntry.objects.filter(created_at__gte=since, amount__lt=0)
        .values("kind")
        .annotate(n=Count("id"), total=Sum("amount"))
        .order_by("kind")
    )
