"""The ledger: the bottom floor of billing's services. Every movement of money
in a wallet is one ``LedgerEntry`` posted here; nothing else writes entries
or the cached balance.

How to move money (this is what top-ups, usage charges, invoices, credit notes,
refunds and adjustments do, and what a payment integration does):

1. Open a transaction (the service is ``@transaction.atomic``).
2. ``amount = amount_parse(value)`` for any amount that came from outside, then
   apply the service's own rule on its sign (a top-up is positive...).
3. ``wallet = wallet_lock(project_id=...)``: the wallet row is locked until the
   transaction ends, so concurrent postings queue and the cached balance
   always equals the sum of the entries (``billing_verify_ledger`` checks).
4. Take a document number if the movement has one (``documents.numbered``).
   Lock order, everywhere: wallet, then document series, then the audit chain.
5. ``entry = entry_post(wallet=wallet, kind=EntryKind..., amount=..., ...)``:
   positive credits the wallet, negative debits it.
6. Record audit with the service's own action, and, for a credit, call
   ``suspension.suspension_lift_if_paid`` (a credit that brings the balance
   back to zero or more lifts billing's suspension and may start VMs).

``entry_post`` posts the entry and keeps the wallet's own bookkeeping (cached
balance, ``negative_since``, the low-balance email threshold) and nothing
else: it does not audit, does not lift or apply a suspension, does not touch
projects or VMs, and does not deduplicate (a service that must record
something once, such as a payment reference, checks under the wallet lock
before posting, as ``wallet_topup`` does).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from controlplane.bulk import rows_update
from controlplane.errors import InvalidInput

from ..models import BillingProfile, BillingSettings, LedgerEntry, Wallet
from ..money import ZERO, format_inr, paise
from ..selectors import billing_settings_get
from .documents import actor_name
from .notifications import wallet_notify_low_balance

MAX_AMOUNT = Decimal("100000000.00")  # rupees per movement


def amount_parse(value, *, field: str = "amount") -> Decimal:
    """A rupee amount from user input (str, int or Decimal): at most two
    decimals, finite, at most ``MAX_AMOUNT`` either way. Anything else is an
    ``InvalidInput`` naming ``field``. The sign is the caller's to check."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        raise InvalidInput("Enter an amount in rupees, such as 500 or 499.50.", fields={field: "Not a number."})
    if not amount.is_finite() or amount != paise(amount):
        raise InvalidInput("Amounts have at most two decimals (paise).", fields={field: "At most two decimals."})
    if abs(amount) > MAX_AMOUNT:
        raise InvalidInput(f"At most ₹{format_inr(MAX_AMOUNT)} at a time.", fields={field: "Too large."})
    return amount


def wallet_lock(*, project_id: int) -> Wallet:
    """The project's wallet, created if needed, locked (SELECT ... FOR UPDATE)
    until the caller's transaction ends; loaded with its project and billing
    profile (see ``wallet_profile``)."""
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
    at: datetime | None = None,
    settings: BillingSettings | None = None,
) -> LedgerEntry:
    """Append one entry of ``amount`` (positive: credit, negative: debit) to a
    wallet locked by ``wallet_lock`` in the current transaction.

    Updates ``wallet.balance`` (the instance and the row), sets
    ``negative_since`` when the balance goes below zero (cleared at zero or
    more; suspension counts the grace period from it) and re-arms or fires the
    low-balance email (sent after commit, once per threshold crossed
    downwards). ``actor``: a user, or a name such as ``"system:billing"``.
    ``at``: when it happened (default now). ``settings``: pass the billing
    settings when posting many entries in one run, to save the query.

    Nothing more: no audit, no suspension lifted or applied (see the module
    docstring for the caller's part)."""
    at = at or timezone.now()
    wallet.balance += amount
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
        created_at=at,
    )
    if wallet.balance < 0 and wallet.negative_since is None:
        wallet.negative_since = at
    elif wallet.balance >= 0:
        wallet.negative_since = None
    _low_balance_bookkeeping(wallet, settings or billing_settings_get())
    wallet.save(update_fields=["balance", "negative_since", "notified_threshold", "updated_at"])
    return entry


def entries_post(
    *, postings: list[tuple[Wallet, str, Decimal, str]], actor, settings: BillingSettings | None = None
) -> list[LedgerEntry]:
    """``entry_post`` for many entries at once (the hourly charge run): each
    posting is ``(wallet, kind, amount, description)`` on a wallet locked by
    ``wallet_lock`` (or the charge run's batch lock) in the current transaction.
    Applied in the given order with the same bookkeeping as ``entry_post``
    (balance, ``negative_since``, low-balance email), then written with one
    INSERT for the entries and one UPDATE for the wallets. Nothing more."""
    at = timezone.now()
    settings = settings or billing_settings_get()
    entries, touched = [], {}
    for wallet, kind, amount, description in postings:
        wallet.balance += amount
        entries.append(
            LedgerEntry(
                project_id=wallet.project_id,
                kind=kind,
                amount=amount,
                balance_after=wallet.balance,
                description=description[:255],
                actor=actor_name(actor),
                actor_user=None if actor is None or isinstance(actor, str) else actor,
                created_at=at,
            )
        )
        if wallet.balance < 0 and wallet.negative_since is None:
            wallet.negative_since = at
        elif wallet.balance >= 0:
            wallet.negative_since = None
        _low_balance_bookkeeping(wallet, settings)
        wallet.updated_at = at
        touched[wallet.pk] = wallet
    LedgerEntry.objects.bulk_create(entries)
    rows_update(Wallet, list(touched.values()), ["balance", "negative_since", "notified_threshold", "updated_at"])
    return entries


def _low_balance_bookkeeping(wallet: Wallet, settings: BillingSettings) -> None:
    """Email once per threshold crossed downwards; re-arm as the balance rises."""
    thresholds = sorted({*settings.thresholds, ZERO})
    due = next((t for t in thresholds if wallet.balance < t), None)
    notified = wallet.notified_threshold
    if due is not None and (notified is None or due < notified):
        project_id, balance = wallet.project_id, wallet.balance
        transaction.on_commit(lambda: wallet_notify_low_balance(project_id=project_id, balance=balance, threshold=due))
    wallet.notified_threshold = due
