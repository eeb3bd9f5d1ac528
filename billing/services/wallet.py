"""The wallet: an append-only ledger with a cached balance.

Every movement goes through ``entry_post`` on a wallet locked with
``wallet_lock`` (SELECT ... FOR UPDATE) in the same transaction, so the cached
balance always equals the sum of the entries. Lock order, everywhere: wallet,
then document series, then the audit chain.
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation

from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

import audit
from accounts.choices import Role
from accounts.models import Membership, Project
from controlplane.errors import Conflict, InvalidInput, PaymentRequired

from ..choices import DocumentKind, EntryKind
from ..gst import Totals, tax_heads
from ..models import BillingProfile, LedgerEntry, ReceiptVoucher, Wallet
from ..money import ZERO, format_inr, paise
from .config import billing_settings_get, treatment_for
from .documents import actor_name, numbered, parties, totals_fields

logger = logging.getLogger(__name__)
MAX_AMOUNT = Decimal("100000000.00")


def amount_parse(value, *, field: str = "amount") -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        raise InvalidInput("Enter an amount in rupees, such as 500 or 499.50.", fields={field: "Not a number."})
    if amount != paise(amount) or not amount.is_finite():
        raise InvalidInput("Amounts have at most two decimals (paise).", fields={field: "At most two decimals."})
    if abs(amount) > MAX_AMOUNT:
        raise InvalidInput(f"At most ₹{format_inr(MAX_AMOUNT)} at a time.", fields={field: "Too large."})
    return amount


def wallet_lock(*, project_id: int) -> Wallet:
    """The project's wallet, created if needed, locked until the transaction ends."""
    locked = Wallet.objects.select_for_update(of=("self",)).select_related("project", "project__billing_profile")
    wallet = locked.filter(project_id=project_id).first()
    if wallet is None:
        Wallet.objects.get_or_create(project_id=project_id)
        wallet = locked.get(project_id=project_id)
    return wallet


def wallet_profile(wallet: Wallet) -> BillingProfile | None:
    """The billing profile loaded with a wallet from ``wallet_lock`` (no query)."""
    try:
        return wallet.project.billing_profile
    except BillingProfile.DoesNotExist:
        return None


def entry_post(
    *,
    wallet: Wallet,
    kind: str,
    amount: Decimal,
    description: str,
    actor,
    reason: str = "",
    reference: str = "",
    invoice=None,
    credit_note=None,
    at=None,
    settings=None,
) -> LedgerEntry:
    """Append one entry to a wallet locked by ``wallet_lock`` and update the
    cached balance; then the low-balance, grace and suspension bookkeeping."""
    before = wallet.balance
    wallet.balance = before + amount
    entry = LedgerEntry.objects.create(
        project_id=wallet.project_id,
        kind=kind,
        amount=amount,
        balance_after=wallet.balance,
        description=description[:255],
        reason=reason,
        reference=reference,
        actor=actor_name(actor),
        actor_user=None if actor is None or isinstance(actor, str) else actor,
        invoice=invoice,
        credit_note=credit_note,
        created_at=at or timezone.now(),
    )
    now = at or timezone.now()
    if wallet.balance < 0 and wallet.negative_since is None:
        wallet.negative_since = now
    elif wallet.balance >= 0:
        wallet.negative_since = None
    _low_balance_bookkeeping(wallet, settings or billing_settings_get())
    wallet.save(update_fields=["balance", "negative_since", "notified_threshold", "updated_at"])
    if amount > 0 and wallet.balance >= 0 and wallet.suspended_by_billing:
        from .suspension import suspension_lift

        suspension_lift(wallet=wallet, actor=actor)
    return entry


def _low_balance_bookkeeping(wallet: Wallet, settings) -> None:
    """Email once per threshold crossed downwards; re-arm as the balance rises."""
    thresholds = sorted({*settings.thresholds, ZERO})
    due = next((t for t in thresholds if wallet.balance < t), None)
    notified = wallet.notified_threshold
    if due is not None and (notified is None or due < notified):
        project_id, balance = wallet.project_id, wallet.balance
        transaction.on_commit(lambda: wallet_notify_low_balance(project_id=project_id, balance=balance, threshold=due))
    wallet.notified_threshold = due


def wallet_notify_low_balance(*, project_id: int, balance: Decimal, threshold: Decimal) -> int:
    """Email the project's owners and admins (and its billing email). Runs
    after commit; a mail failure is logged, never raised into billing."""
    project = Project.objects.get(pk=project_id)
    recipients = set(
        Membership.objects.filter(project=project, role__in=[Role.OWNER, Role.ADMIN]).values_list(
            "user__email", flat=True
        )
    )
    profile = BillingProfile.objects.filter(project=project).first()
    if profile and profile.billing_email:
        recipients.add(profile.billing_email)
    if threshold <= 0:
        grace = billing_settings_get().grace_hours
        subject = f"[{project.name}] Wallet balance below zero"
        body = (
            f"The wallet of project {project.name} is at ₹{format_inr(balance)}. Top up within {grace} hours: "
            "after that the project is suspended and its virtual machines are stopped."
        )
    else:
        subject = f"[{project.name}] Wallet balance below ₹{format_inr(threshold)}"
        body = (
            f"The wallet of project {project.name} is at ₹{format_inr(balance)}. Top up to keep your machines running."
        )
    try:
        return send_mail(subject, body, None, sorted(recipients))
    except Exception:  # noqa: BLE001 - a mail server problem must not undo billing
        logger.exception("low-balance email for project %s failed", project_id)
        return 0


def _receipt_issue(*, wallet: Wallet, entry: LedgerEntry, number: dict, amount: Decimal, payment_mode: str):
    settings = billing_settings_get()
    treatment = treatment_for(settings=settings, profile=wallet_profile(wallet))
    # The advance includes GST: split it so that taxable + tax == amount exactly.
    inclusive = paise(amount * 100 / (100 + settings.gst_rate))
    heads = tax_heads(taxable=inclusive, gst_rate=settings.gst_rate, regime=treatment.regime)
    totals = Totals(amount - heads.tax, heads.cgst, heads.sgst, heads.igst, round_off=ZERO, total=amount)
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
    # The receipt's number first: crediting may lift a suspension, which audits
    # (lock order: wallet, series, audit chain).
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
    receipt = _receipt_issue(wallet=wallet, entry=entry, number=number, amount=amount, payment_mode=payment_mode)
    audit.record(
        actor=actor,
        action="wallet.topup",
        target=wallet,
        project=project,
        details={"amount": str(amount), "balance": str(wallet.balance), "receipt": receipt.number, "entry": entry.pk},
    )
    return receipt


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


def wallet_check_can_afford(*, project: Project, plan, hours: int | None = None) -> None:
    """Raise PaymentRequired when the project is suspended or its wallet cannot
    pay ``hours`` (default: the configured pre-check hours) of ``plan`` with GST.
    Called by the VM request service before a request is accepted."""
    from ..selectors import plan_price_for_project

    if project.is_suspended:
        raise PaymentRequired(
            f"Project {project.name} is suspended ({project.suspended_reason or 'by an operator'}); "
            "top up the wallet to lift it before requesting machines."
        )
    price = plan_price_for_project(plan=plan, project=project, hours=hours)
    balance = Wallet.objects.filter(project=project).values_list("balance", flat=True).first() or ZERO
    if balance < price.period_total:
        raise PaymentRequired(
            f"A {plan.name} machine needs ₹{format_inr(price.period_total)} for its first {price.hours} hours "
            f"(₹{format_inr(price.running.total)}/hour with GST); the wallet of {project.name} holds "
            f"₹{format_inr(balance)}. Top up at least ₹{format_inr(price.period_total - balance)}.",
            fields={"plan": "Not enough balance."},
        )
