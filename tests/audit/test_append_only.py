"""PostgreSQL itself refuses to change or remove audit rows."""

import pytest
from django.db import DatabaseError, connection, transaction

from audit.models import AuditCheckpoint, AuditEvent


def _refused(sql: str, params=None, *, setup: str = ""):
    """Run sql in a savepoint and return the database's error (the test transaction goes on)."""
    with pytest.raises(DatabaseError) as excinfo, transaction.atomic(), connection.cursor() as cursor:
        if setup:
            cursor.execute(setup)
        cursor.execute(sql, params)
    assert "append-only" in str(excinfo.value)
    return excinfo.value


@pytest.fixture
def events(db, append_events):
    return append_events(3)


def test_raw_update_is_refused(events):
    _refused("UPDATE audit_auditevent SET details = '{}' WHERE id = %s", [events[0].pk])


def test_raw_delete_is_refused(events):
    _refused("DELETE FROM audit_auditevent WHERE id = %s", [events[0].pk])


def test_truncate_is_refused(events):
    _refused("TRUNCATE audit_auditevent", setup="SET LOCAL audit.allow_truncate = 'off'")


def test_orm_update_and_delete_are_refused(events):
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=events[0].pk).update(actor="scheduler")
    with pytest.raises(DatabaseError), transaction.atomic():
        events[1].delete()
    assert AuditEvent.objects.filter(pk__in=[e.pk for e in events], actor="system").count() == 3


def test_the_retention_switch_alone_does_not_allow_deleting_events_no_checkpoint_covers(events):
    # The documented retention path needs a checkpoint at or after the row: not a free pass.
    _refused(
        "DELETE FROM audit_auditevent WHERE id = %s", [events[-1].pk], setup="SET LOCAL audit.allow_retention = 'on'"
    )


def test_the_retention_switch_never_allows_updates(events):
    _refused(
        "UPDATE audit_auditevent SET actor = 'x' WHERE id = %s",
        [events[0].pk],
        setup="SET LOCAL audit.allow_retention = 'on'",
    )


def test_checkpoints_are_append_only_too(events):
    checkpoint = AuditCheckpoint.objects.create(
        created_at=events[0].created_at,
        last_event_id=events[0].pk,
        last_event_hash=events[0].hash,
        last_event_created_at=events[0].created_at,
        events_removed=1,
        cutoff=events[0].created_at,
        archive_path="/nowhere",
        archive_sha256="0" * 64,
    )
    _refused("UPDATE audit_auditcheckpoint SET last_event_hash = 'x' WHERE id = %s", [checkpoint.pk])
    _refused(
        "DELETE FROM audit_auditcheckpoint WHERE id = %s",
        [checkpoint.pk],
        setup="SET LOCAL audit.allow_retention = 'on'",
    )
