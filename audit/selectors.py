from pathlib import Path

from django.db import connection, transaction
from django.db.models import QuerySet

from accounts.models import Project

from . import chain, export
from .models import AuditCheckpoint, AuditEvent
from .severity import Severity, security_filter


def event_list_for_project(*, project: Project, action: str = "") -> QuerySet[AuditEvent]:
    """A project's events, newest first (callers check the viewer's role)."""
    events = AuditEvent.objects.filter(project=project).order_by("-id")
    if action:
        events = events.filter(action=action)
    return events


def chain_verify() -> chain.ChainReport:
    """Walk the whole chain from the latest checkpoint (or genesis) in one snapshot."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        checkpoint = AuditCheckpoint.objects.order_by("-last_event_id").first()
        start_hash, start_after = chain.GENESIS, None
        if checkpoint is not None:
            start_hash, start_after = checkpoint.last_event_hash, checkpoint.last_event_id
            stale = AuditEvent.objects.filter(id__lte=start_after).order_by("id").values_list("id", flat=True).first()
            if stale is not None:
                return chain.ChainReport(
                    ok=False,
                    checked=0,
                    head_id=start_after,
                    head_hash=start_hash,
                    broken_id=stale,
                    reason=f"it is at or before checkpoint {checkpoint.pk} (event {start_after}) "
                    "and should have been removed: the checkpoint or the event was inserted by hand",
                )
        rows = export.event_rows(AuditEvent.objects.filter(id__gt=start_after or 0), chunk_size=5000)
        return chain.walk(rows, start_hash=start_hash, start_after=start_after)


def archive_verify(*, path: Path) -> chain.ChainReport:
    """Check a retention archive: its own chain, and that it joins the checkpoints around it.

    The archive must start where the previous checkpoint (or genesis) ended and
    end at the event its checkpoint names, with the file digest the checkpoint
    stored.
    """
    rows = list(export.read_archive(path))
    if not rows:
        return chain.ChainReport(ok=False, checked=0, head_id=None, head_hash="", reason="the archive is empty")
    first_id, last_id = rows[0]["id"], rows[-1]["id"]
    checkpoint = AuditCheckpoint.objects.filter(last_event_id=last_id).first()
    if checkpoint is None:
        return chain.ChainReport(
            ok=False, checked=0, head_id=None, head_hash="", reason=f"no checkpoint names event {last_id}"
        )
    previous = (
        AuditCheckpoint.objects.filter(last_event_id__lt=first_id)
        .order_by("-last_event_id")
        .values_list("last_event_id", "last_event_hash")
        .first()
    )
    start_after, start_hash = previous or (None, chain.GENESIS)
    report = chain.walk(rows, start_hash=start_hash, start_after=start_after)
    if report.ok and report.head_hash != checkpoint.last_event_hash:
        report.ok, report.reason = False, f"the archive does not end at the hash checkpoint {checkpoint.pk} stored"
    elif report.ok and export.file_sha256(path) != checkpoint.archive_sha256:
        report.ok, report.reason = False, f"the file's SHA-256 differs from the one checkpoint {checkpoint.pk} stored"
    return report


def security_event_list(
    *, severity: str = Severity.INFO, action: str = "", actor: str = "", ip: str = ""
) -> QuerySet[AuditEvent]:
    """Security events (audit/severity.py), newest first: at least ``severity``, of one
    ``action``, by an ``actor`` (name contains), from an ``ip`` (address or its beginning)."""
    events = AuditEvent.objects.filter(security_filter(severity)).order_by("-id")
    if action:
        events = events.filter(action=action)
    if actor:
        events = events.filter(actor__icontains=actor)
    if ip:
        events = events.filter(ip_address__startswith=ip)
    return events
