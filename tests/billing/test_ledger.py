"""The ledger posts entries and nothing else; the services that credit a
wallet lift billing's suspension explicitly."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from billing import services
from billing.choices import EntryKind
from billing.models import LedgerEntry, Wallet
from billing.selectors import ledger_problems
from billing.services.ledger import amount_parse, entry_post, wallet_lock
from controlplane.errors import InvalidInput
from tests.fixtures.billing import fund

D = Decimal


@pytest.fixture
def suspended(project):
    """A project billing suspended: below zero past a grace period of zero hours."""
    services.billing_settings_update(actor="system:tests", grace_hours=0)
    services.wallet_adjust(project=project, amount="-150", actor="system:tests", reason="usage")
    assert services.suspension_apply(project_id=project.pk, now=timezone.now() + timedelta(seconds=1))
    project.refresh_from_db()
    assert project.is_suspended
    return project


def test_posting_an_entry_alone_leaves_a_suspended_project_suspended(suspended):
    # When an entry brings the balance back above zero, posted straight on the ledger
    with transaction.atomic():
        wallet = wallet_lock(project_id=suspended.pk)
        entry = entry_post(wallet=wallet, kind=EntryKind.TOPUP, amount=D("500.00"), description="x", actor="t")

    # Then the entry and the wallet's own bookkeeping are written...
    wallet = Wallet.objects.get(project=suspended)
    assert (entry.balance_after, wallet.balance, wallet.negative_since) == (D("350.00"), D("350.00"), None)
    assert ledger_problems() == []
    # ...and nothing else: the project stays suspended, nothing audited
    suspended.refresh_from_db()
    assert suspended.is_suspended and wallet.suspended_by_billing
    assert not AuditEvent.objects.filter(action="project.unsuspended").exists()


def test_a_top_up_lifts_the_suspension(suspended, supplier):
    services.wallet_topup(project=suspended, amount="500", actor="system:tests")

    suspended.refresh_from_db()
    assert not suspended.is_suspended
    assert not Wallet.objects.get(project=suspended).suspended_by_billing
    assert AuditEvent.objects.filter(action="project.unsuspended", project_id=suspended.pk).exists()


def test_a_positive_adjustment_lifts_it_only_once_the_balance_is_back_at_zero(suspended):
    services.wallet_adjust(project=suspended, amount="100", actor="system:tests", reason="goodwill")  # -50
    suspended.refresh_from_db()
    assert suspended.is_suspended

    services.wallet_adjust(project=suspended, amount="50", actor="system:tests", reason="goodwill")  # 0
    suspended.refresh_from_db()
    assert not suspended.is_suspended


def test_entry_post_keeps_negative_since_and_the_running_balance(project):
    at = timezone.now() - timedelta(hours=3)
    with transaction.atomic():
        wallet = wallet_lock(project_id=project.pk)
        entry_post(wallet=wallet, kind=EntryKind.USAGE, amount=D("-2.50"), description="usage", actor=None, at=at)
        entry_post(wallet=wallet, kind=EntryKind.USAGE, amount=D("-1.00"), description="usage", actor=None)
    wallet = Wallet.objects.get(project=project)
    assert (wallet.balance, wallet.negative_since) == (D("-3.50"), at)
    assert list(LedgerEntry.objects.filter(project=project).order_by("id").values_list("balance_after", "actor")) == [
        (D("-2.50"), "system"),
        (D("-3.50"), "system"),
    ]
    fund(project, "3.50")
    assert Wallet.objects.get(project=project).negative_since is None


@pytest.mark.parametrize(
    ("value", "expected"), [("500", D("500")), ("499.50", D("499.50")), (12, D("12")), ("-0.01", D("-0.01"))]
)
def test_amount_parse_accepts_rupees_with_paise(value, expected):
    assert amount_parse(value) == expected


@pytest.mark.parametrize("value", ["1.005", "abc", "", None, "NaN", "Infinity", "100000000.01"])
def test_amount_parse_refuses_with_a_field_error(value):
    with pytest.raises(InvalidInput) as caught:
        amount_parse(value, field="credit")
    assert "credit" in caught.value.fields
