"""The hash chain: what is hashed, how, and how a sequence of events is checked.

An event's hash is ``sha256(prev_hash + canonical_json(payload))`` in hex, where
``payload`` holds every stored column except ``id``, ``prev_hash`` and
``hash``. Canonical JSON is ``json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` with ``created_at`` as an ISO-8601 UTC string. The same
functions check rows read from the database and lines read from an archive.
"""

import datetime
import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.serializers.json import DjangoJSONEncoder

GENESIS = "0" * 64

# The columns that go into the hash, in the order exports list them.
PAYLOAD_FIELDS = (
    "created_at",
    "actor",
    "actor_user_id",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "project_id",
    "details",
    "ip_address",
    "user_agent",
    "request_id",
)


def timestamp(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).isoformat()


def clean_text(value: str) -> str:
    """Text PostgreSQL stores unchanged: no NUL (refused) and no lone surrogates (not UTF-8)."""
    return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _plain(value):
    """Make values survive a trip through PostgreSQL jsonb unchanged."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("Audit details cannot hold NaN or infinity.")
        if value == 0:
            return 0.0  # numeric has no negative zero
        # jsonb prints 1e+16 back as 10000000000000000, which Python reads as an int.
        return int(value) if value.is_integer() and "e" in repr(value) else value
    if isinstance(value, dict):
        return {clean_text(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def normalize_details(details: dict | None) -> dict:
    """Details as they will read back from the database (Decimal, datetime, UUID → str)."""
    if details is None:
        return {}
    if not isinstance(details, dict):
        raise ValueError("Audit details must be a dict.")
    return _plain(json.loads(json.dumps(details, cls=DjangoJSONEncoder)))


def canonical(payload: dict) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(prev_hash: str, payload: dict) -> str:
    return hashlib.sha256((prev_hash + canonical(payload)).encode()).hexdigest()


def payload_of(row: dict) -> dict:
    """The hashed payload from a row (``created_at`` may be a datetime or its ISO string)."""
    payload = {field: row[field] for field in PAYLOAD_FIELDS}
    if isinstance(payload["created_at"], datetime.datetime):
        payload["created_at"] = timestamp(payload["created_at"])
    return payload


@dataclass
class ChainReport:
    ok: bool
    checked: int
    head_id: int | None
    head_hash: str
    broken_id: int | None = None
    reason: str = ""


def walk(rows: Iterable[dict], *, start_hash: str, start_after: int | None = None) -> ChainReport:
    """Check rows (dicts with ``id``, ``prev_hash``, ``hash`` and the payload) in id order.

    Stops at the first broken event: one whose content no longer matches its
    hash (edited), or whose ``prev_hash`` is not the hash of the event before
    it (an event was removed, inserted or the rows were reordered).
    """
    expected, previous_id, checked = start_hash, start_after, 0
    for row in rows:
        reason = ""
        if row["prev_hash"] != expected:
            before = f"event {previous_id}" if previous_id is not None else "the start of the chain"
            reason = (
                f"its prev_hash does not match the hash of {before}: "
                "an event was removed, inserted or reordered before it"
            )
        elif event_hash(row["prev_hash"], payload_of(row)) != row["hash"]:
            reason = "its content does not match its hash: the event was modified"
        if reason:
            return ChainReport(
                ok=False,
                checked=checked,
                head_id=previous_id,
                head_hash=expected,
                broken_id=row["id"],
                reason=reason,
            )
        expected, previous_id = row["hash"], row["id"]
        checked += 1
    return ChainReport(ok=True, checked=checked, head_id=previous_id, head_hash=expected)
