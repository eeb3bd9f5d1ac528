"""The hourly charge job: meter, debit usage plus GST, suspend the overdue.

Charging takes a batch of projects' uncharged usage records with their wallets
locked, debits them (one ``UsageCharge`` and ledger entry per project and month
of usage) and marks them charged, set-based (a few statements per batch, not
per project), all in one transaction: a crash at any point leaves
either all of it or none of it, and a re-run charges only what is left.
The invoice later settles the few paise by which per-charge rounding differs
from the invoice's per-line rounding (billing.services.invoices).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

import audit
from controlplane.bulk import rows_update

from ..choices import EntryKind
from ..gst import tax_heads
from ..models import BillingSettings, SupplierRegistration, UsageCharge, UsageRecord, Wallet
from ..money import ZERO, paise
from ..periods import HOUR, billing_tz, month_of
from ..selectors import billing_settings_get, registration_by_hypervisor, treatment_for, usage_uncharged_project_ids
from .ledger import entries_post, entry_post, wallet_lock, wallet_profile
from .metering import meter_horizon, usage_meter
from .suspension import suspension_apply_due

ACTOR = "system:billing"
CHARGE_BATCH = 200  # projects per transaction (set-based: a few statements per batch)
logger = logging.getLogger(__name__)


def _month_totals(by_rate: dict[Decimal, Decimal], regime: str) -> tuple[Decimal, Decimal]:
    """Taxable value and GST of a month's amounts (before GST, by GST rate), per-head rounding."""
    heads = [tax_heads(taxable=paise(v), gst_rate=r, regime=regime) for r, v in sorted(by_rate.items())]
    return sum((h.taxable for h in heads), ZERO), sum((h.tax for h in heads), ZERO)


def month_charge_post(
    *,
    wallet: Wallet,
    settings: BillingSettings,
    regime: str,
    period,
    by_rate: dict[Decimal, Decimal],
    hour_from: datetime,
    hour_to: datetime,
    description: str,
    kind: str,
    registration_id: int | None = None,
) -> UsageCharge:
    """Debit one month's amounts (before GST, by GST rate) from a locked wallet as one
    ``UsageCharge`` with its ledger entry (none when it comes to 0.00), audited."""
    heads = [tax_heads(taxable=paise(v), gst_rate=r, regime=regime) for r, v in sorted(by_rate.items())]
    taxable = sum((h.taxable for h in heads), ZERO)
    tax = sum((h.tax for h in heads), ZERO)
    entry = None
    if taxable + tax:
        entry = entry_post(
            wallet=wallet,
            kind=EntryKind.USAGE,
            amount=-(taxable + tax),
            description=description,
            actor=ACTOR,
            settings=settings,
        )
    charge = UsageCharge.objects.create(
        project_id=wallet.project_id,
        period=period,
        hour_from=hour_from,
        hour_to=hour_to,
        regime=regime,
        taxable=taxable,
        tax=tax,
        total=taxable + tax,
        entry=entry,
        registration_id=registration_id,
    )
    if entry is not None:
        audit.record(
            actor=ACTOR,
            action="wallet.debited",
            target=wallet,
            project=wallet.project_id,
            details={
                "kind": kind,
                "amount": str(entry.amount),
                "balance": str(wallet.balance),
                "entry": entry.pk,
                "charge": charge.pk,
            },
        )
    return charge


def month_then_registration(item) -> tuple:
    """Sort key of a ``{(..., period, registration_id): rows}`` item: the principal
    registration (None) first."""
    *key, registration_id = item[0]
    return (*key, registration_id or 0)


def charge_treatment(*, settings: BillingSettings, wallet: Wallet, registration_id: int | None):
    """The customer's treatment when supplied from that registration (None: the principal one)."""
    registration = SupplierRegistration.objects.get(pk=registration_id) if registration_id else None
    return treatment_for(settings=settings, profile=wallet_profile(wallet), registration=registration)


def usage_charge_locked(
    *, wallet: Wallet, settings: BillingSettings, before: datetime | None = None
) -> list[UsageCharge]:
    """Charge the uncharged usage of a wallet already locked by the caller
    (optionally only hours before ``before``)."""
    return usage_charge_wallets(wallets=[wallet], settings=settings, before=before)


def usage_charge_wallets(
    *, wallets: list[Wallet], settings: BillingSettings, before: datetime | None = None
) -> list[UsageCharge]:
    """Charge the uncharged usage of several wallets locked by the caller, set-based:
    one read of their usage rows, one INSERT of ledger entries (``ledger.entries_post``),
    one of ``UsageCharge`` rows, one UPDATE marking the rows charged and one audit append
    (``audit.record_many``), whatever the number of projects. Per project and month the
    result is what ``month_charge_post`` gives: one charge, one entry (none at 0.00), one
    ``wallet.debited`` event, the rows marked with their charge."""
    by_project = {wallet.project_id: wallet for wallet in wallets}
    records = UsageRecord.objects.filter(project_id__in=list(by_project), charge__isnull=True)
    if before is not None:
        records = records.filter(hour_start__lt=before)
    rows = records.values_list(
        "id", "project_id", "hour_start", "running_seconds", "stopped_seconds", "price_running", "price_stopped",
        "gst_rate", "vm__hypervisor_id",
    )  # fmt: skip
    registration_of = registration_by_hypervisor()
    months: dict = defaultdict(list)
    for row in rows:  # per project, month and supplier registration (its VM's hypervisor's)
        months[(row[1], month_of(row[2]), registration_of.get(row[8]))].append(row)
    if not months:
        return []
    registrations = SupplierRegistration.objects.in_bulk({key[2] for key in months if key[2]})
    charges, postings, record_ids = [], [], []
    for (project_id, period, registration_id), month_rows in sorted(months.items(), key=month_then_registration):
        wallet = by_project[project_id]
        regime = treatment_for(
            settings=settings, profile=wallet_profile(wallet), registration=registrations.get(registration_id)
        ).regime
        by_rate: dict[Decimal, Decimal] = defaultdict(Decimal)
        for _, _, _, running, stopped, price_running, price_stopped, rate, _ in month_rows:
            by_rate[rate] += (running * price_running + stopped * price_stopped) / 3600
        taxable, tax = _month_totals(by_rate, regime)
        hour_from = min(row[2] for row in month_rows)
        hour_to = max(row[2] for row in month_rows) + HOUR
        charge = UsageCharge(
            project_id=project_id, period=period, hour_from=hour_from, hour_to=hour_to, regime=regime,
            taxable=taxable, tax=tax, total=taxable + tax, registration_id=registration_id,
        )  # fmt: skip
        if taxable + tax:
            description = (
                f"Usage {hour_from.astimezone(billing_tz()):%d %b %H:%M} "
                f"to {hour_to.astimezone(billing_tz()):%d %b %H:%M}"
                f" ({len(month_rows)} VM-hours)"
            )
            postings.append((wallet, EntryKind.USAGE, -(taxable + tax), description))
        charges.append(charge)
        record_ids.append([row[0] for row in month_rows])
    entries = iter(entries_post(postings=postings, actor=ACTOR, settings=settings))
    for charge in charges:
        charge.entry = next(entries) if charge.total else None
    UsageCharge.objects.bulk_create(charges)
    rows_update(
        UsageRecord,
        [UsageRecord(pk=pk, charge=c) for c, ids in zip(charges, record_ids, strict=True) for pk in ids],
        ["charge"],
    )
    audit.record_many(
        [
            {
                "actor": ACTOR,
                "action": "wallet.debited",
                "target": by_project[charge.project_id],
                "project": charge.project_id,
                "details": {
                    "kind": EntryKind.USAGE,
                    "amount": str(charge.entry.amount),
                    "balance": str(charge.entry.balance_after),
                    "entry": charge.entry.pk,
                    "charge": charge.pk,
                },
            }
            for charge in charges
            if charge.entry is not None
        ]
    )
    return charges


@transaction.atomic
def usage_charge_project(*, project_id: int, settings: BillingSettings | None = None) -> list[UsageCharge]:
    wallet = wallet_lock(project_id=project_id)
    return usage_charge_locked(wallet=wallet, settings=settings or billing_settings_get())


def _wallets_lock(project_ids: list[int]) -> list[Wallet]:
    have = set(Wallet.objects.filter(project_id__in=project_ids).values_list("project_id", flat=True))
    Wallet.objects.bulk_create(
        [Wallet(project_id=pid) for pid in project_ids if pid not in have], ignore_conflicts=True
    )
    return list(
        Wallet.objects.select_for_update(of=("self",))
        .select_related("project", "project__billing_profile")
        .filter(project_id__in=project_ids)
        .order_by("project_id")
    )


@transaction.atomic
def usage_charge_projects(*, project_ids: list[int], settings: BillingSettings | None = None) -> list[UsageCharge]:
    """Charge several projects in one transaction, set-based (``usage_charge_wallets``).
    All their wallets are locked first, in project order, before anything is
    audited: the lock order stays wallet, then audit chain."""
    settings = settings or billing_settings_get()
    return usage_charge_wallets(wallets=_wallets_lock(sorted(project_ids)), settings=settings)


def usage_charge_pending(*, deadline: float | None = None, batch: int = CHARGE_BATCH) -> tuple[int, bool]:
    """Charge every project with uncharged usage, ``batch`` projects per
    transaction; a batch that fails is redone one project at a time so one
    bad project (logged) does not hold up the others. Stops at ``deadline``
    (time.monotonic()); returns (charges, more left)."""
    settings = billing_settings_get()
    project_ids = usage_uncharged_project_ids()
    count = 0
    for start in range(0, len(project_ids), batch):
        if deadline is not None and time.monotonic() > deadline:
            return count, True
        ids = project_ids[start : start + batch]
        try:
            count += len(usage_charge_projects(project_ids=ids, settings=settings))
        except Exception:
            logger.exception("charging projects %s..%s failed; retrying one by one", ids[0], ids[-1])
            for project_id in ids:
                try:
                    count += len(usage_charge_project(project_id=project_id, settings=settings))
                except Exception:
                    logger.exception("charging project %s failed", project_id)
    return count, False


def billing_run_hourly(*, now: datetime | None = None, budget_seconds: float | None = None) -> dict:
    """The charge job: meter complete hours, charge them, suspend the overdue.
    With a budget it stops early and says ``more`` (the task then runs again)."""
    deadline = time.monotonic() + budget_seconds if budget_seconds else None
    now = now or timezone.now()
    settings = billing_settings_get()
    metered = usage_meter(until=meter_horizon(now), starts_at=settings.metering_starts_at, deadline=deadline)
    charges, more = usage_charge_pending(deadline=deadline)
    suspended = suspension_apply_due(now=now)
    return {
        "metered_vms": metered.vms,
        "usage_records": metered.records,
        "charges": charges,
        "suspended": suspended,
        "more": more or metered.more,
    }
