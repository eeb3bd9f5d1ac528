"""PostgreSQL appends an event in one statement (audit_event_append, migration 0003; issue 25).

The function takes the chain's lock, reads the head, puts the event's time into the payload
Python wrote and hashes it: the stored hash must be exactly what ``audit.chain`` computes,
whatever the details hold, and the time must read back as Python prints it.
"""

import datetime

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

import audit
from audit import chain, selectors
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

UTC = datetime.UTC


@pytest.mark.parametrize(
    "moment",
    [
        datetime.datetime(2026, 12, 6, 5, 36, 32, 0, tzinfo=UTC),  # no fraction: isoformat() prints none
        datetime.datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=UTC),  # leading zeros of the fraction
        datetime.datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime.datetime(2026, 6, 1, 12, 0, 0, 120000, tzinfo=datetime.timezone(datetime.timedelta(hours=5.5))),
    ],
)
def test_the_database_prints_a_time_as_python_does(moment):
    with connection.cursor() as cursor:
        cursor.execute("SELECT audit_timestamp_iso(%s)", [moment])
        assert cursor.fetchone()[0] == chain.timestamp(moment)


def test_one_statement_an_event_and_the_hash_python_computes(user):
    tricky = {
        "created_at": "@created_at@",  # the placeholder itself, nested: must stay as it is
        "note": 'quotes " and \\ backslashes, ₹ 1,000 — 日本語, emoji 🚀',
        "list": [1, 2.5, None, True],
    }
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        event = audit.record(actor='system:odd "actor"', action="admin.action", details=tricky)

    assert len(queries) == 1, [q["sql"] for q in queries.captured_queries]
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.details == tricky
    assert (stored.created_at, stored.hash, stored.prev_hash) == (event.created_at, event.hash, event.prev_hash)
    assert stored.hash == chain.event_hash(stored.prev_hash, chain.payload_of(stored.__dict__))
    report = selectors.chain_verify()
    assert report.ok, report.reason


def test_a_writer_whose_clock_is_behind_never_goes_back_in_time(user):
    # Given an event recorded now
    first = audit.record(actor="system", action="admin.action", details={"n": 1})
    # When another writer appends with a clock a minute behind (another machine, or a wait for the lock)
    behind = first.created_at - datetime.timedelta(minutes=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("audit.services.timezone.now", lambda: behind)
        second = audit.record(actor="system", action="admin.action", details={"n": 2})
    # Then its event takes the head's time, and the chain still verifies
    assert second.created_at == first.created_at
    assert AuditEvent.objects.get(pk=second.pk).created_at == first.created_at
    report = selectors.chain_verify()
    assert report.ok, report.reason
