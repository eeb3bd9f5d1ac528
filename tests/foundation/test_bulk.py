"""controlplane.bulk.rows_update: one UPDATE ... FROM (VALUES ...) for many rows."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Project
from billing.models import Wallet
from controlplane.bulk import rows_update

pytestmark = pytest.mark.django_db


def test_each_row_gets_its_own_values_nulls_included_and_others_stay():
    # Given three wallets, two of them changed in memory (one to a NULL, one from a NULL)
    projects = Project.objects.bulk_create(Project(name=f"bulk{n}", slug=f"bulk{n}") for n in range(3))
    wallets = Wallet.objects.bulk_create(
        Wallet(project=p, balance=Decimal("10.00"), notified_threshold=Decimal("100.00")) for p in projects
    )
    now = timezone.now()
    wallets[0].balance, wallets[0].negative_since = Decimal("-1.25"), now
    wallets[1].balance, wallets[1].notified_threshold = Decimal("5.50"), None
    wallets[2].balance = Decimal("99.99")  # changed in memory, not passed: must stay 10.00

    # When the first two are written in one statement per batch of one
    with CaptureQueriesContext(connection) as queries:
        updated = rows_update(Wallet, wallets[:2], ["balance", "negative_since", "notified_threshold"], batch_size=1)

    # Then each row holds its own values, the third is untouched
    assert updated == 2 and len(queries) == 2
    rows = {w.pk: w for w in Wallet.objects.all()}
    assert rows[wallets[0].pk].balance == Decimal("-1.25") and rows[wallets[0].pk].negative_since == now
    assert rows[wallets[0].pk].notified_threshold == Decimal("100.00")
    assert rows[wallets[1].pk].balance == Decimal("5.50") and rows[wallets[1].pk].notified_threshold is None
    assert rows[wallets[2].pk].balance == Decimal("10.00") and rows[wallets[2].pk].negative_since is None


def test_nothing_to_write_sends_nothing():
    with CaptureQueriesContext(connection) as queries:
        assert rows_update(Wallet, [], ["balance"]) == 0
    assert len(queries) == 0
