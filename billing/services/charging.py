"""The hourly charge job: meter, debit usage plus GST, suspend the overdue.

Charging takes a project's uncharged usage records with its wallet locked,
debits them (one ``UsageCharge`` and ledger entry per month of usage) and
marks them charged, all in one transaction: a crash at any point leaves
either all of it or none of it, and a re-run charges only what is left.
The invoice later settles the few paise by which per-charge rounding differs
from the invoice's per-line rounding (billing.services.invoices).
"""

from __future__ import annotations

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
from ..periods import HOUR, month_of
from .config import billing_settings_get, treatment_for
from .metering import meter_horizon, usage_meter
from .suspension import suspension_apply_due
from .wallet import entry_post, wallet_lock, wallet_profile

ACTOR = "system:billing"


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
        heads = [tax_heads(taxable=paise(v), gst_rate=r, regime=treatment.regime) for r, v in sorted(by_rate.items())]
        taxable = sum((h.taxable for h in heads), ZERO)
        tax = sum((h.tax for h in heads), ZERO)
        hour_from = min(row[1] for row in month_rows)
        hour_to = max(row[1] for row in month_rows) + HOUR
        entry = None
        if taxable + tax:
            entry = entry_post(
                wallet=wallet,
                kind=EntryKind.USAGE,
                amount=-(taxable + tax),
                description=(
                    f"Usage {timezone.localtime(hour_from):%d %b %H:%M} to {timezone.localtime(hour_to):%d %b %H:%M}"
                    f" ({len(month_rows)} VM-hours)"
                ),
                actor=ACTOR,
                settings=settings,
            )
        charge = UsageCharge.objects.create(
            project_id=wallet.project_id,
            period=period,
            hour_from=hour_from,
            hour_to=hour_to,
            regime=treatment.regime,
            taxable=taxable,
            tax=tax,
            total=taxable + tax,
            entry=entry,
        )
        UsageRecord.objects.filter(id__in=[row[0] for row in month_rows]).update(charge=charge)
        if entry is not None:
            audit.record(
                actor=ACTOR,
                action="wallet.debited",
                target=wallet,
                project=wallet.project_id,
                details={
                    "kind": EntryKind.USAGE,
                    "amount": str(entry.amount),
                    "balance": str(wallet.balance),
                    "entry": entry.pk,
                    "charge": charge.pk,
                },
            )
        charges.append(charge)
    return charges


@transaction.atomic
def usage_charge_project(*, project_id: int, settings: BillingSettings | None = None) -> list[UsageCharge]:
    wallet = wallet_lock(project_id=project_id)
    return usage_charge_locked(wallet=wallet, settings=settings or billing_settings_get())


def usage_charge_pending(*, deadline: float | None = None) -> tuple[int, bool]:
    """Charge every project with uncharged usage, one transaction each. Stops
    at ``deadline`` (time.monotonic()); returns (charges, more left)."""
    settings = billing_settings_get()
    project_ids = list(
        UsageRecord.objects.filter(charge__isnull=True).order_by("project_id").values_list("project_id", flat=True)
    )
    project_ids = sorted(set(project_ids))
    count = 0
    for index, project_id in enumerate(project_ids):
        if deadline is not None and time.monotonic() > deadline:
            return count, index < len(project_ids)
        count += len(usage_charge_project(project_id=project_id, settings=settings))
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
