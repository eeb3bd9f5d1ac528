"""The hourly charge job: meter, debit usage plus GST, suspend the overdue.

Charging takes a project's uncharged usage records with its wallet locked,
debits them (one ``UsageCharge`` and ledger entry per month of usage) and
marks them charged, all in one transaction: a crash at any point leaves
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

from ..choices import EntryKind
from ..gst import tax_heads
from ..models import BillingSettings, UsageCharge, UsageRecord, Wallet
from ..money import ZERO, paise
from ..periods import HOUR, billing_tz, month_of
from ..selectors import billing_settings_get, treatment_for, usage_uncharged_project_ids
from .ledger import entry_post, wallet_lock, wallet_profile
from .metering import meter_horizon, usage_meter
from .suspension import suspension_apply_due

ACTOR = "system:billing"
CHARGE_BATCH = 25  # projects per transaction
logger = logging.getLogger(__name__)


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


def usage_charge_locked(
    *, wallet: Wallet, settings: BillingSettings, before: datetime | None = None
) -> list[UsageCharge]:
    """Charge the uncharged usage of a wallet already locked by the caller
    (optionally only hours before ``before``)."""
    records = UsageRecord.objects.filter(project_id=wallet.project_id, charge__isnull=True)
    if before is not None:
        records = records.filter(hour_start__lt=before)
    rows = list(
        records.values_list(
            "id", "hour_start", "running_seconds", "stopped_seconds", "price_running", "price_stopped", "gst_rate"
        )
    )
    if not rows:
        return []
    treatment = treatment_for(settings=settings, profile=wallet_profile(wallet))
    months: dict = defaultdict(list)
    for row in rows:
        months[month_of(row[1])].append(row)
    charges = []
    for period, month_rows in sorted(months.items()):
        by_rate: dict[Decimal, Decimal] = defaultdict(Decimal)
        for _, _, running, stopped, price_running, price_stopped, rate in month_rows:
            by_rate[rate] += (running * price_running + stopped * price_stopped) / 3600
        hour_from = min(row[1] for row in month_rows)
        hour_to = max(row[1] for row in month_rows) + HOUR
        charge = month_charge_post(
            wallet=wallet,
            settings=settings,
            regime=treatment.regime,
            period=period,
            by_rate=by_rate,
            hour_from=hour_from,
            hour_to=hour_to,
            description=(
                f"Usage {hour_from.astimezone(billing_tz()):%d %b %H:%M} "
                f"to {hour_to.astimezone(billing_tz()):%d %b %H:%M}"
                f" ({len(month_rows)} VM-hours)"
            ),
            kind=EntryKind.USAGE,
        )
        UsageRecord.objects.filter(id__in=[row[0] for row in month_rows]).update(charge=charge)
        charges.append(charge)
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
    """Charge several projects in one transaction (one commit instead of one
    each). All their wallets are locked first, in project order, before
    anything is audited: the lock order stays wallet, then audit chain."""
    settings = settings or billing_settings_get()
    charges = []
    for wallet in _wallets_lock(sorted(project_ids)):
        charges += usage_charge_locked(wallet=wallet, settings=settings)
    return charges


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
