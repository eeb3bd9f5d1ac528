"""Reads for the usage page: each VM's transfer in a month against its plan, priced, with a projection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.utils import timezone

from compute.models import VMTransfer

from .money import paise
from .periods import month_of, month_start, next_month

GB = 10**9


@dataclass(frozen=True)
class VMTransferRow:
    vm: str
    plan: str
    transfer_gb: Decimal
    included_gb: int
    over_gb: Decimal
    projected_gb: Decimal  # at this pace by the month's end (the month so far); the actual once it ended
    projected_over_gb: Decimal
    projected_amount: Decimal  # before GST, at today's price


def _gb(value: int | float) -> Decimal:
    return (Decimal(value) / GB).quantize(Decimal("0.001"))


def transfer_by_vm(*, project, month: date, price_per_gb: Decimal, now: datetime | None = None) -> list[VMTransferRow]:
    now = now or timezone.now()
    start, end = month_start(month), month_start(next_month(month))
    share = 1.0
    if month == month_of(now):
        share = max((now - start).total_seconds(), 3600.0) / (end - start).total_seconds()
    rows = (
        VMTransfer.objects.filter(vm__project=project, month=month)
        .select_related("vm__plan")
        .order_by("vm__name", "vm_id")
    )
    out = []
    for row in rows:
        included = row.vm.plan.included_transfer_gb
        total = row.rx_bytes + row.tx_bytes
        projected = total / share
        over = max(0, total - included * GB) if included else 0
        projected_over = max(0.0, projected - included * GB) if included else 0.0
        out.append(
            VMTransferRow(
                vm=row.vm.name,
                plan=row.vm.plan.name,
                transfer_gb=_gb(total),
                included_gb=included,
                over_gb=_gb(over),
                projected_gb=_gb(projected),
                projected_over_gb=_gb(projected_over),
                projected_amount=paise(_gb(projected_over) * price_per_gb),
            )
        )
    return out
