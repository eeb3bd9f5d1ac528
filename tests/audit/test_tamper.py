"""Tampering with the table behind the application's back is found by audit_verify.

Each test plays a database superuser: ``session_replication_role = replica``
switches the append-only triggers off for the test's own transaction.
"""

import json
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit import chain, selectors
from tests import workerproc


def _as_superuser(sql: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        cursor.execute("SET LOCAL session_replication_role = origin")


def _verify_fails() -> str:
    with pytest.raises(CommandError) as excinfo:
        call_command("audit_verify")
    return str(excinfo.value)


@pytest.fixture
def events(db, append_events):
    events = append_events(6)
    call_command("audit_verify")  # the untouched chain is fine
    return events


def test_an_edited_detail_is_found(events):
    target = events[3]
    _as_superuser("UPDATE audit_auditevent SET details = %s WHERE id = %s", [json.dumps({"n": 99}), target.pk])

    message = _verify_fails()

    assert f"BROKEN at event {target.pk}:" in message and "modified" in message


def test_a_deleted_event_is_found_at_the_one_after_it(events):
    _as_superuser("DELETE FROM audit_auditevent WHERE id = %s", [events[2].pk])

    message = _verify_fails()

    assert f"BROKEN at event {events[3].pk}:" in message and f"event {events[1].pk}" in message
    assert "removed" in message


def test_a_reordered_timestamp_is_found(events):
    a, b = events[2], events[3]
    _as_superuser(
        "UPDATE audit_auditevent SET created_at = CASE id WHEN %s THEN %s ELSE %s END WHERE id IN (%s, %s)",
        [a.pk, b.created_at, a.created_at, a.pk, b.pk],
    )

    assert f"BROKEN at event {a.pk}:" in _verify_fails()


def test_swapped_rows_are_found(events):
    # Given two neighbouring events that trade places (their ids are exchanged)
    a, b = events[1], events[2]
    _as_superuser("UPDATE audit_auditevent SET id = -1 WHERE id = %s", [a.pk])
    _as_superuser("UPDATE audit_auditevent SET id = %s WHERE id = %s", [a.pk, b.pk])
    _as_superuser("UPDATE audit_auditevent SET id = %s WHERE id = -1", [b.pk])

    # Then each row still matches its own hash, but the order is wrong where the swap starts
    message = _verify_fails()
    assert f"BROKEN at event {a.pk}:" in message and "reordered" in message


def test_an_edited_and_rehashed_event_breaks_the_link_to_the_next(events):
    # Given an attacker who edits an event and recomputes its hash
    target = events[2]
    payload = chain.payload_of({**{f: getattr(target, f) for f in chain.PAYLOAD_FIELDS}, "details": {"n": -1}})
    forged = chain.event_hash(target.prev_hash, payload)
    _as_superuser("UPDATE audit_auditevent SET details = %s, hash = %s WHERE id = %s", ['{"n": -1}', forged, target.pk])

    # Then the next event no longer links to it
    assert f"BROKEN at event {events[3].pk}:" in _verify_fails()


def test_selector_reports_the_head(events):
    report = selectors.chain_verify()
    assert report.ok and report.head_id == events[-1].pk and report.head_hash == events[-1].hash


@pytest.mark.django_db(transaction=True)
def test_audit_verify_exits_non_zero_naming_the_event(append_events):
    # Given a committed chain with one edited event
    events = append_events(4)
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE audit_auditevent SET actor = 'scheduler' WHERE id = %s", [events[1].pk])
        cursor.execute("COMMIT")

    # When an operator runs the command
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": workerproc.test_database_url(),
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "audit_verify"], cwd=workerproc.ROOT, env=env, capture_output=True, text=True
    )

    # Then it fails and names the event
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"BROKEN at event {events[1].pk}" in result.stderr
