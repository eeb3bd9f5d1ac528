"""Writes to the audit log: ``record`` (append one event), ``record_many`` (a batch) and
``retention_apply``.

Appends are serialised so the chain has exactly one order: on PostgreSQL with a
transaction-level advisory lock (``CHAIN_LOCK_KEY``), on SQLite by the write
lock every transaction already takes at BEGIN (``transaction_mode=IMMEDIATE``).
The lock is held until the surrounding transaction ends, so call ``record()``
as the last thing in a service's transaction, after its row locks: the chain
lock is then always the last lock taken and cannot deadlock with them.
"""

import datetime
import gzip
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from controlplane.logging import context as log_context

from . import chain, export, request_meta
from .choices import ACTION_NAMES, WORKER_PREFIX, Action, SystemActor, actor_kind
from .models import AuditCheckpoint, AuditEvent

# pg_advisory_xact_lock key of the chain ("audit" in ASCII).
CHAIN_LOCK_KEY = 0x6175646974


def worker_actor(hostname: str | None = None) -> str:
    """The actor name of a worker process: ``worker:<hostname>``."""
    return f"{WORKER_PREFIX}{hostname or socket.gethostname()}"


def _actor_fields(actor) -> tuple[int | None, str]:
    if actor is None:
        return None, SystemActor.SYSTEM
    if isinstance(actor, str):
        if actor_kind(actor) is None:
            kinds = ", ".join(SystemActor.values)
            raise ValueError(f"Unknown audit actor {actor!r}: use a user, or one of {kinds} (optionally kind:detail).")
        return None, actor[:200]
    if not getattr(actor, "is_authenticated", False):
        return None, SystemActor.ANONYMOUS
    return actor.pk, actor.get_username()


def _target_fields(target) -> tuple[str, str, str]:
    if target is None:
        return "", "", ""
    if not isinstance(target, Model):
        raise ValueError(f"Audit target must be a model instance, got {type(target).__name__}.")
    if target.pk is None:
        raise ValueError("Audit target must be saved before it is recorded.")
    return target._meta.label_lower, str(target.pk), chain.clean_text(str(target))[:255]


def _project_id(project, target) -> int | None:
    if project is not None:
        return project if isinstance(project, int) else project.pk
    if target is None:
        return None
    if target._meta.label_lower == "accounts.project":
        return target.pk
    return getattr(target, "project_id", None)


def _lock_chain() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_KEY])


def chain_head() -> str:
    """Hash the next event must link to: the last event's, else the latest checkpoint's, else genesis."""
    last = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
    if last:
        return last
    checkpoint = AuditCheckpoint.objects.order_by("-last_event_id").values_list("last_event_hash", flat=True).first()
    return checkpoint or chain.GENESIS


def _event_fields(*, actor, action: str, target=None, project=None, details=None, request=None) -> dict:
    """The stored columns of one event except ``created_at`` and the hashes."""
    if not isinstance(action, str) or action not in ACTION_NAMES:
        raise ValueError(f"Unknown audit action {action!r}: add it to audit/choices.py first.")
    request = request if request is not None else request_meta.current_request()
    actor_user_id, actor_name = _actor_fields(actor)
    target_type, target_id, target_repr = _target_fields(target)
    return {
        "actor": actor_name,
        "actor_user_id": actor_user_id,
        "action": str(action),
        "target_type": target_type,
        "target_id": target_id,
        "target_repr": target_repr,
        "project_id": _project_id(project, target),
        "details": chain.normalize_details(details),
        "ip_address": request_meta.client_ip(request) if request is not None else "",
        "user_agent": request_meta.user_agent(request) if request is not None else "",
        "request_id": (getattr(request, "request_id", "") if request is not None else "")
        or log_context().get("request_id", ""),
    }


def record(
    *,
    actor,
    action: str,
    target: Model | None = None,
    project=None,
    details: dict | None = None,
    request=None,
) -> AuditEvent:
    """Append one event to the log and return it.

    ``actor``: a user, or a system actor (``"system"``, ``"scheduler"``,
    ``"reconciler"``, ``"worker:<host>"``, see ``worker_actor()``); ``None`` is
    ``"system"`` and an anonymous user is ``"anonymous"``. ``action``: a name
    from ``audit.choices.Action``; anything else raises ``ValueError``.
    ``target``: a saved model instance or None. ``project``: a Project or its
    id; when omitted it is taken from the target (the project itself, or its
    ``project_id``). ``details``: a JSON-able dict (Decimal, datetime and UUID
    become strings); never put secrets in it. ``request``: when given, the
    client address, user agent and request id are stored. Without it, the web
    request in progress is used (``request_meta.current_request``, bound by
    RequestIDMiddleware), and outside one the request id bound for logging
    (a task published by a request carries it: controlplane/logging.py).
    """
    return _append(
        _event_fields(actor=actor, action=action, target=target, project=project, details=details, request=request)
    )


# No savepoint when the caller already holds a transaction (every state change does): an
# append that fails fails the caller's whole transaction anyway, and it saves two statements
# per event (issue 25). Bad input is refused above, before any transaction is touched.
@transaction.atomic(savepoint=False)
def _append(fields: dict) -> AuditEvent:
    fields["created_at"] = timezone.now()
    if connection.vendor == "postgresql":
        return _append_in_one_statement(fields)
    _lock_chain()  # on SQLite the transaction holds the write lock from BEGIN (IMMEDIATE) already
    prev_hash = chain_head()
    digest = chain.event_hash(prev_hash, chain.payload_of(fields))
    return AuditEvent.objects.create(prev_hash=prev_hash, hash=digest, **fields)


# audit_event_append (migration 0003) takes the lock key, the payload, its placeholder and one
# parameter per stored column of the payload, named p_<column>.
_APPEND_SQL = "SELECT * FROM audit_event_append(p_lock_key => %s, p_payload => %s, p_placeholder => %s, {})".format(
    ", ".join(f"p_{column} => %s" + ("::jsonb" if column == "details" else "") for column in chain.PAYLOAD_FIELDS)
)
_TIME_PLACEHOLDER = "@created_at@"


def _append_in_one_statement(fields: dict) -> AuditEvent:
    """PostgreSQL: the chain's lock, the chain's head and the insert in one round trip. The
    event's time is ``created_at``, or the head's when that is later (a writer that waited for
    the lock): the chain's times never go back. The function puts it in place of the
    placeholder and hashes the payload exactly as ``chain.event_hash`` would."""
    payload = chain.canonical(chain.payload_of({**fields, "created_at": _TIME_PLACEHOLDER}))
    placeholder = chain.canonical({"created_at": _TIME_PLACEHOLDER})[1:-1]
    values = [json.dumps(fields[c]) if c == "details" else fields[c] for c in chain.PAYLOAD_FIELDS]
    with connection.cursor() as cursor:
        cursor.execute(_APPEND_SQL, [CHAIN_LOCK_KEY, payload, placeholder, *values])
        pk, created_at, prev_hash, digest = cursor.fetchone()
    fields["created_at"] = created_at
    event = AuditEvent(pk=pk, prev_hash=prev_hash, hash=digest, **fields)
    event._state.adding, event._state.db = False, connection.alias
    return event


@transaction.atomic
def record_many(events: list[dict]) -> list[AuditEvent]:
    """Append several events, in the given order, under one chain lock and in one
    INSERT (a batch job's events: the hourly charge run). Each dict holds
    ``record()``'s keyword arguments. Same chain as that many ``record()`` calls;
    the same rule applies: call it last in the transaction."""
    rows = [_event_fields(**event) for event in events]
    if not rows:
        return []
    _lock_chain()
    prev_hash = chain_head()
    now = timezone.now()
    created = []
    for fields in rows:
        fields["created_at"] = now
        digest = chain.event_hash(prev_hash, chain.payload_of(fields))
        created.append(AuditEvent(prev_hash=prev_hash, hash=digest, **fields))
        prev_hash = digest
    return AuditEvent.objects.bulk_create(created)


# --- Retention ---------------------------------------------------------------


@dataclass
class RetentionResult:
    removed: int
    checkpoint: AuditCheckpoint | None
    archive: Path | None


def retention_apply(*, older_than_days: int, archive_dir: Path | None = None, actor=None) -> RetentionResult:
    """Archive events older than ``older_than_days`` to gzip JSON lines, then remove them.

    In one transaction, under the chain lock: write the archive (as
    ``*.partial``), add an ``AuditCheckpoint`` naming the last removed event
    and its hash, delete the events through the trigger's retention path
    (``SET LOCAL audit.allow_retention = 'on'``; the trigger also demands a
    checkpoint covering each deleted row), and record ``audit.retention``. The
    archive is renamed to its final name only after the commit, so a failed
    run leaves no archive claiming events that are still in the table.
    """
    if older_than_days < 0:
        raise ValueError("older_than_days must be zero or more.")
    archive_dir = Path(archive_dir or settings.AUDIT_ARCHIVE_DIR)
    archive_dir.mkdir(parents=True, exist_ok=True)
    now = timezone.now()
    cutoff = now - datetime.timedelta(days=older_than_days)
    final = archive_dir / f"audit-{now:%Y%m%dT%H%M%S%fZ}.jsonl.gz"
    partial = final.with_name(final.name + ".partial")
    try:
        with transaction.atomic():
            _lock_chain()
            # Everything up to the newest old event goes, so the rest stays one unbroken chain.
            last = AuditEvent.objects.filter(created_at__lt=cutoff).order_by("-id").first()
            if last is None:
                return RetentionResult(removed=0, checkpoint=None, archive=None)
            doomed = AuditEvent.objects.filter(id__lte=last.id).order_by("id")
            removed = 0
            with gzip.open(partial, "wt", encoding="utf-8") as fh:
                for line in export.jsonl_lines(export.event_rows(doomed)):
                    fh.write(line)
                    removed += 1
            with open(partial, "rb") as fh:
                os.fsync(fh.fileno())
            checkpoint = AuditCheckpoint.objects.create(
                created_at=now,
                last_event_id=last.id,
                last_event_hash=last.hash,
                last_event_created_at=last.created_at,
                events_removed=removed,
                cutoff=cutoff,
                archive_path=str(final),
                archive_sha256=export.file_sha256(partial),
            )
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL audit.allow_retention = 'on'")
                    cursor.execute("DELETE FROM audit_auditevent WHERE id <= %s", [last.id])
                    cursor.execute("SET LOCAL audit.allow_retention = 'off'")
            else:
                doomed.delete()
            record(
                actor=actor,
                action=Action.AUDIT_RETENTION,
                target=checkpoint,
                details={
                    "removed": removed,
                    "last_event_id": last.id,
                    "cutoff": cutoff,
                    "archive": str(final),
                    "archive_sha256": checkpoint.archive_sha256,
                },
            )
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.rename(final)
    return RetentionResult(removed=removed, checkpoint=checkpoint, archive=final)
