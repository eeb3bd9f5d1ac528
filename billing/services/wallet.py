"""Money in and out of a wallet by people: top-ups (with their receipt
voucher), operators' adjustments and refunds; and the wallet pre-check that
admits VM requests.

Each posts through the ledger (``ledger.wallet_lock`` + ``ledger.entry_post``)
and audits; a credit then calls ``suspension.suspension_lift_if_paid``
explicitly. Floors: ledger, then suspension, then this module.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

import audit
from accounts.models import Project
from controlplane.errors import Conflict, InvalidInput, PaymentRequired

from ..choices import DocumentKind, EntryKind
from ..gst import Totals, tax_heads
from ..models import LedgerEntry, ReceiptVoucher, Wallet
from ..money import ZERO, format_inr, paise
from ..selectors import billing_settings_get, plan_price_for_project, treatment_for, wallet_balance
from .documents import numbered, parties, totals_fields
from .ledger import amount_parse, entry_post, wallet_lock, wallet_profile
from .suspension import suspension_lift_if_paid


def advance_totals(*, amount: Decimal, gst_rate: Decimal, regime: str) -> Totals:
    """The GST included in an advance (a receipt, or a refund of one): split so
    that taxable + tax == amount exactly."""
    inclusive = paise(amount * 100 / (100 + gst_rate))
    heads = tax_heads(taxable=inclusive, gst_rate=gst_rate, regime=regime)
    return Totals(amount - heads.tax, heads.cgst, heads.sgst, heads.igst, round_off=ZERO, total=amount)


def _receipt_issue(*, wallet: Wallet, entry: LedgerEntry, number: dict, amount: Decimal, payment_mode: str):
    settings = billing_settings_get()
    treatment = treatment_for(settings=settings, profile=wallet_profile(wallet))
    totals = advance_totals(amount=amount, gst_rate=settings.gst_rate, regime=treatment.regime)
    return ReceiptVoucher.objects.create(
        **number,
        **parties(settings=settings, project=wallet.project, profile=wallet_profile(wallet), treatment=treatment),
        **totals_fields(totals),
        project_id=wallet.project_id,
        entry=entry,
        payment_mode=payment_mode,
        payment_reference=entry.reference,
        sac_code=settings.sac_code,
        gst_rate=settings.gst_rate,
    )


@transaction.atomic
def wallet_topup(
    *, project: Project, amount, actor, reference: str = "", payment_mode: str = "", reason: str = "", at=None
) -> ReceiptVoucher:
    """Credit money received and issue its receipt voucher. A payment
    reference can be recorded once per project (a second submit is a 409)."""
    amount = amount_parse(amount)
    if amount <= 0:
        raise InvalidInput("A top-up is a positive amount.", fields={"amount": "Must be positive."})
    at = at or timezone.now()
    wallet = wallet_lock(project_id=project.pk)
    reference = reference.strip()
    if reference and LedgerEntry.objects.filter(project=project, kind=EntryKind.TOPUP, reference=reference).exists():
        raise Conflict(f"A top-up with reference {reference} is already recorded for {project.name}.")
    # The receipt's number first: lifting a suspension audits (lock order: wallet, series, audit chain).
    number = numbered(kind=DocumentKind.RECEIPT, prefix=billing_settings_get().receipt_prefix, at=at, actor=actor)
    entry = entry_post(
        wallet=wallet,
        kind=EntryKind.TOPUP,
        amount=amount,
        description=f"Top-up{f' ({payment_mode})' if payment_mode else ''}",
        actor=actor,
        reason=reason,
        reference=reference,
        at=at,
    )
    suspension_lift_if_paid(wallet=wallet, actor=actor)
    receipt = _receipt_issue(wallet=wallet, entry=entry, number=number, amount=amount, payment_mode=payment_mode)
    audit.record(
        actor=actor,
        action="wallet.topup",
        target=wallet,
        project=project,
        details={
            "amount": str(amount),
            "balance": str(wallet.balance),
            "receipt": receipt.number,
            "entry": entry.pk,
            **({"reason": reason} if reason else {}),
        },
    )
    return receipt


def wallet_open(*, project: Project) -> Wallet:
    """Give a project its (empty) wallet if it has none. Registered with
    ``accounts.hooks`` for ``project_created`` (billing.apps), so every new
    project has one; operators' tools call it for older projects."""
    return Wallet.objects.get_or_create(project_id=project.pk)[0]


@transaction.atomic
def wallet_adjust(*, project: Project, amount, actor, reason: str) -> LedgerEntry:
    """An operator's correction, positive or negative; a reason is required."""
    amount = amount_parse(amount)
    if amount == 0:
        raise InvalidInput("An adjustment of zero changes nothing.", fields={"amount": "Must not be zero."})
    if not reason.strip():
        raise InvalidInput("Say why the balance is adjusted.", fields={"reason": "Required."})
    wallet = wallet_lock(project_id=project.pk)
    entry = entry_post(
        wallet=wallet, kind=EntryKind.ADJUSTMENT, amount=amount, description="Adjustment", actor=actor, reason=reason
    )
    if amount > 0:
        suspension_lift_if_paid(wallet=wallet, actor=actor)
    audit.record(
        actor=actor,
        action="wallet.adjusted",
        target=wallet,
        project=project,
        details={"amount": str(amount), "balance": str(wallet.balance), "reason": reason, "entry": entry.pk},
    )
    return entry


@transaction.atomic
def wallet_refund(*, project: Project, amount, actor, reason: str, reference: str = "") -> LedgerEntry:
    """Pay balance back to the customer (outside the product); never below zero."""
    amount = amount_parse(amount)
    if amount <= 0:
        raise InvalidInput("Refund a positive amount.", fields={"amount": "Must be positive."})
    if not reason.strip():
        raise InvalidInput("Say why the money is refunded.", fields={"reason": "Required."})
    wallet = wallet_lock(project_id=project.pk)
    if amount > wallet.balance:
        raise Conflict(f"The wallet holds ₹{format_inr(wallet.balance)}; a refund cannot exceed it.")
    entry = entry_post(
        wallet=wallet,
        kind=EntryKind.REFUND,
        amount=-amount,
        description="Refund",
        actor=actor,
        reason=reason,
        reference=reference.strip(),
    )
    audit.record(
        actor=actor,
        action="wallet.debited",
        target=wallet,
        project=project,
        details={"kind": EntryKind.REFUND, "amount": str(-amount), "balance": str(wallet.balance), "entry": entry.pk},
    )
    return entry


def wallet_check_can_afford(*, project: Project, plan, hours: int | None = None, count: int = 1) -> None:
    """Raise PaymentRequired when the project is suspended or its wallet cannot
    pay ``hours`` (default: the configured pre-check hours) of ``count`` VMs of ``plan`` with GST.
    Registered as a compute admission check (billing.apps), so the VM request
    service runs it before a request is accepted."""
    if project.is_suspended:
        raise PaymentRequired(
            f"Project {project.name} is suspended ({project.suspended_reason or 'by an operator'}); "
            "top up the wallet to lift it before requesting machines."
        )
    price = plan_price_for_project(plan=plan, project=project, hours=hours)
    balance = wallet_balance(project=project)
    needed = count * price.period_total
    if balance < needed:
        what = f"A {plan.name} machine needs" if count == 1 else f"{count} {plan.name} machines need"
        their, each = ("its", "") if count == 1 else ("their", " each")
        raise PaymentRequired(
            f"{what} ₹{format_inr(needed)} for {their} first {price.hours} hours "
            f"(₹{format_inr(price.running.total)}/hour{each} with GST); the wallet of {project.name} holds "
            f"₹{format_inr(balance)}. Top up at least ₹{format_inr(needed - balance)}.",
            fields={"plan": "Not enough balance."},
        )
