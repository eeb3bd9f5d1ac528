"""audit_retention: old events go to a gzip JSON-lines archive, a checkpoint keeps the rest verifiable."""

import datetime
import gzip
import json
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

import audit
from audit import chain, selectors, services
from audit.models import AuditCheckpoint, AuditEvent


def _at(days_ago: float):
    """Record as if it were ``days_ago`` days ago."""
    return mock.patch("audit.services.timezone.now", return_value=timezone.now() - datetime.timedelta(days=days_ago))


def _archive_lines(path):
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture
def aged(db, append_events):
    """Events 400 days old, then 10 days old, then fresh: (old, recent)."""
    with _at(400):
        old = append_events(5)
    with _at(10):
        recent = append_events(3)
    return old, recent


def test_old_events_are_archived_and_removed_and_the_rest_still_verifies(aged, tmp_path):
    old, recent = aged

    # When retention keeps 365 days
    call_command("audit_retention", "--older-than-days", "365", "--archive-dir", str(tmp_path))

    # Then the archive holds exactly the removed events, verifiable on their own from genesis
    (archive,) = tmp_path.glob("audit-*.jsonl.gz")
    lines = _archive_lines(archive)
    assert [line["id"] for line in lines] == [e.pk for e in old]
    assert [line["hash"] for line in lines] == [e.hash for e in old]
    assert chain.walk(lines, start_hash=chain.GENESIS).ok
    assert not AuditEvent.objects.filter(pk__in=[e.pk for e in old]).exists()
    # and a checkpoint names the last removed event
    checkpoint = AuditCheckpoint.objects.get()
    assert (checkpoint.last_event_id, checkpoint.last_event_hash, checkpoint.events_removed) == (
        old[-1].pk,
        old[-1].hash,
        5,
    )
    # and the remaining chain, which starts at the checkpoint, verifies
    report = selectors.chain_verify()
    assert report.ok, report.reason
    assert AuditEvent.objects.order_by("id").first().prev_hash == old[-1].hash
    # and the removal itself is on the record
    last = AuditEvent.objects.order_by("-id").first()
    assert last.action == "audit.retention" and last.details["removed"] == 5
    assert last.target_type == "audit.auditcheckpoint" and last.target_id == str(checkpoint.pk)
    call_command("audit_verify", "--archive", str(archive))


def test_the_default_age_comes_from_settings(aged, tmp_path):
    old, recent = aged
    with override_settings(AUDIT_RETENTION_DAYS=5):
        call_command("audit_retention", "--archive-dir", str(tmp_path))
    assert AuditCheckpoint.objects.get().events_removed == 8
    assert selectors.chain_verify().ok


def test_nothing_old_means_nothing_removed(db, append_events, tmp_path):
    append_events(3)
    result = services.retention_apply(older_than_days=365, archive_dir=tmp_path)
    assert result.removed == 0 and not list(tmp_path.iterdir()) and not AuditCheckpoint.objects.exists()


def test_removing_every_event_leaves_the_checkpoint_as_the_head(aged, tmp_path):
    # Given retention that removes everything (the retention event itself is the only one left)
    services.retention_apply(older_than_days=0, archive_dir=tmp_path)
    services.retention_apply(older_than_days=0, archive_dir=tmp_path)
    assert AuditEvent.objects.count() == 1

    # When something new is recorded
    event = audit.record(actor="system", action="admin.action")

    # Then it links to what was there before and the chain verifies
    assert selectors.chain_verify().ok
    assert AuditEvent.objects.order_by("id").first().prev_hash == AuditCheckpoint.objects.first().last_event_hash
    assert event.prev_hash != chain.GENESIS


def test_consecutive_archives_join_up(aged, tmp_path):
    old, recent = aged
    first = services.retention_apply(older_than_days=365, archive_dir=tmp_path)
    second = services.retention_apply(older_than_days=5, archive_dir=tmp_path)

    assert second.removed == 3  # the 10-day-old events; the first run's own audit.retention event is new
    call_command("audit_verify", "--archive", str(first.archive), "--archive", str(second.archive))
    assert selectors.chain_verify().ok


def test_a_tampered_archive_is_found(aged, tmp_path):
    result = services.retention_apply(older_than_days=365, archive_dir=tmp_path)
    lines = _archive_lines(result.archive)
    lines[2]["details"]["n"] = 42
    with gzip.open(result.archive, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(line) + "\n" for line in lines)

    with pytest.raises(CommandError, match=f"BROKEN at event {lines[2]['id']}"):
        call_command("audit_verify", "--archive", str(result.archive))


def test_a_re_signed_archive_is_found_by_its_digest(aged, tmp_path):
    result = services.retention_apply(older_than_days=365, archive_dir=tmp_path)
    lines = _archive_lines(result.archive)
    with gzip.open(result.archive, "wt", encoding="utf-8") as fh:  # same events, different bytes
        fh.writelines(json.dumps(line, indent=None, separators=(", ", ": ")) + "\n" for line in lines)

    with pytest.raises(CommandError, match="SHA-256"):
        call_command("audit_verify", "--archive", str(result.archive))


def test_a_failed_run_removes_nothing_and_leaves_no_archive(aged, tmp_path):
    old, _ = aged
    with mock.patch("audit.services.record", side_effect=RuntimeError("boom")), pytest.raises(RuntimeError):
        services.retention_apply(older_than_days=365, archive_dir=tmp_path)

    assert AuditEvent.objects.filter(pk__in=[e.pk for e in old]).count() == 5
    assert not AuditCheckpoint.objects.exists()
    assert not list(tmp_path.iterdir())
    assert selectors.chain_verify().ok


def test_an_event_left_behind_a_checkpoint_is_reported(aged):
    old, _ = aged
    AuditCheckpoint.objects.create(
        created_at=timezone.now(),
        last_event_id=old[2].pk,
        last_event_hash=old[2].hash,
        last_event_created_at=old[2].created_at,
        events_removed=3,
        cutoff=timezone.now(),
        archive_path="/forged",
        archive_sha256="0" * 64,
    )
    with pytest.raises(CommandError, match=f"BROKEN at event {old[0].pk}"):
        call_command("audit_verify")
