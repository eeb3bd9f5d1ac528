"""Data transfer over the plan's allowance: metered per closed month, charged and invoiced like hours.

Compute counts each VM's exact bytes per month (``compute.VMTransfer``, months
of ``settings.TIME_ZONE`` like billing's). Once a month has ended (plus
``METER_DELAY``, so the last collection rounds have landed) every VM whose
transfer passed ``plan.included_transfer_gb`` gets one ``TransferRecord``
(unique per VM and month: a re-run adds nothing) at the operator's
``transfer_price_per_gb`` (0: nothing is recorded). Charging debits the
project's uncharged records in one ``UsageCharge`` per month, with the wallet
locked, so the invoice that collects the month's charges gets them on their
own lines ("Data transfer over the plan", SAC and GST rate of the plan).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from compute.models import VMTransfer

from ..gst import tax_heads
from ..models import BillingSettings, InvoiceLine, TransferRecord, UsageCharge, Wallet
from ..periods import month_of, month_start, next_month
from ..selectors import billing_settings_get, registration_by_hypervisor
from .charging import charge_treatment, month_charge_post, month_then_registration
from .ledger import wallet_lock

ACTOR = "system:billing"
GB = 10**9
METER_DELAY = timedelta(minutes=10)
_GB_PLACES = Decimal("0.001")
_AMOUNT = Decimal("0.000001")
logger = logging.getLogger(__name__)


def _closed_before(now: datetime):
    """Months before this one are closed once METER_DELAY has passed since they ended."""
    return month_of(now - METER_DELAY)


def transfer_meter(*, settings: BillingSettings, now: datetime | None = None, project_id: int | None = None) -> int:
    """Record every closed month's over-use not recorded yet; returns how many records were made."""
    price = settings.transfer_price_per_gb
    if not price:
        return 0
    rows = VMTransfer.objects.filter(
        month__lt=_closed_before(now or timezone.now()), vm__plan__included_transfer_gb__gt=0
    )
    if project_id is not None:
        rows = rows.filter(vm__project_id=project_id)
    done = TransferRecord.objects.filter(vm_id__in=rows.values("vm_id")).values_list("vm_id", "period")
    done = set(done)
    records = []
    for row in rows.select_related("vm__plan"):
        plan = row.vm.plan
        included = plan.included_transfer_gb * GB
        if (row.vm_id, row.month) in done or row.total_bytes <= included:
            continue
        over = (Decimal(row.total_bytes - included) / GB).quantize(_GB_PLACES, rounding=ROUND_CEILING)
        records.append(
            TransferRecord(
                vm_id=row.vm_id,
                project_id=row.vm.project_id,
                plan=plan,
                period=row.month,
                transfer_bytes=row.total_bytes,
                included_bytes=included,
                over_gb=over,
                price_per_gb=price,
                sac_code=plan.sac_code,
                gst_rate=plan.gst_rate,
                amount=(over * price).quantize(_AMOUNT),
            )
        )
    TransferRecord.objects.bulk_create(records, ignore_conflicts=True)
    return len(records)


def transfer_charge_locked(
    *, wallet: Wallet, settings: BillingSettings, now: datetime | None = None
) -> list[UsageCharge]:
    """Meter and charge the closed months' over-use of a wallet the caller has locked."""
    transfer_meter(settings=settings, now=now, project_id=wallet.project_id)
    return records_charge_locked(
        wallet=wallet,
        settings=settings,
        records=TransferRecord.objects.filter(project_id=wallet.project_id, charge__isnull=True),
        describe=lambda period: f"Data transfer over plan allowances, {period:%B %Y}",
        kind="transfer",
    )


def records_charge_locked(
    *, wallet: Wallet, settings: BillingSettings, records, describe, kind: str
) -> list[UsageCharge]:
    """Debit uncharged monthly records (``period``, ``amount``, ``gst_rate``; transfer over-use,
    snapshot storage) of a locked wallet: one ``UsageCharge`` per month and supplier registration
    (the one its VM's hypervisor supplies under), linked from its records."""
    rows = list(records.values_list("id", "period", "amount", "gst_rate", "vm__hypervisor_id"))
    if not rows:
        return []
    registration_of = registration_by_hypervisor()
    months: dict = defaultdict(list)
    for row in rows:
        months[(row[1], registration_of.get(row[4]))].append(row)
    charges = []
    for (period, registration_id), month_rows in sorted(months.items(), key=month_then_registration):
        treatment = charge_treatment(settings=settings, wallet=wallet, registration_id=registration_id)
        by_rate: dict[Decimal, Decimal] = defaultdict(Decimal)
        for _, _, amount, rate, _ in month_rows:
            by_rate[rate] += amount
        charge = month_charge_post(
            wallet=wallet,
            settings=settings,
            regime=treatment.regime,
            period=period,
            by_rate=by_rate,
            hour_from=month_start(period),
            hour_to=month_start(next_month(period)),
            description=describe(period),
            kind=kind,
            registration_id=registration_id,
        )
        records.model.objects.filter(id__in=[row[0] for row in month_rows]).update(charge=charge)
        charges.append(charge)
    return charges


def transfer_charge_pending(*, now: datetime | None = None) -> int:
    """Meter closed months and charge every project with uncharged over-use, one transaction each."""
    return records_charge_pending(
        model=TransferRecord, meter=transfer_meter, charge_locked=transfer_charge_locked, now=now, what="transfer"
    )


def records_charge_pending(*, model, meter, charge_locked, now: datetime | None, what: str) -> int:
    """Meter, then charge every project with uncharged ``model`` records, one transaction each
    (one project's failure is logged and leaves the others charged)."""
    settings = billing_settings_get()
    meter(settings=settings, now=now)
    project_ids = model.objects.filter(charge__isnull=True).values_list("project_id", flat=True).distinct()
    count = 0
    for project_id in sorted(set(project_ids)):
        try:
            with transaction.atomic():
                count += len(charge_locked(wallet=wallet_lock(project_id=project_id), settings=settings, now=now))
        except Exception:
            logger.exception("charging the %s of project %s failed", what, project_id)
    return count


def transfer_lines(charge_ids: list[int], regime: str, *, first_position: int) -> list[InvoiceLine]:
    """The invoice lines of the over-use in these charges: one per VM, plan, month, price and rate."""
    groups = (
        TransferRecord.objects.filter(charge_id__in=charge_ids)
        .values("vm_id", "vm__name", "plan_id", "plan__name", "period", "price_per_gb", "sac_code", "gst_rate")
        .annotate(over=Sum("over_gb"), included=Sum("included_bytes"))
        .order_by("vm__name", "vm_id", "period", "price_per_gb", "gst_rate")
    )
    lines = []
    for group in groups:
        lines.append(
            record_line(
                position=first_position + len(lines),
                description=(
                    f"Data transfer of {group['vm__name']} over the {group['plan__name']} plan's "
                    f"{group['included'] // GB} GB, {group['period']:%B %Y}"
                ),
                group=group,
                quantity=group["over"],
                unit="GB",
                rate=group["price_per_gb"],
                regime=regime,
            )
        )
    return lines


def record_line(*, position: int, description: str, group: dict, quantity, unit: str, rate, regime: str) -> InvoiceLine:
    """One invoice line of monthly records (``group``: vm_id, plan_id, sac_code, gst_rate), taxed by ``regime``."""
    heads = tax_heads(taxable=quantity * rate, gst_rate=group["gst_rate"], regime=regime)
    return InvoiceLine(
        position=position,
        description=description,
        sac_code=group["sac_code"],
        quantity=quantity,
        unit=unit,
        rate=rate,
        vm_id=group["vm_id"],
        plan_id=group["plan_id"],
        taxable=heads.taxable,
        gst_rate=heads.gst_rate,
        cgst_rate=heads.cgst_rate,
        cgst=heads.cgst,
        sgst_rate=heads.sgst_rate,
        sgst=heads.sgst,
        igst_rate=heads.igst_rate,
        igst=heads.igst,
        total=heads.total,
    )
