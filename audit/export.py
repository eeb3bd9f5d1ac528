"""Events as JSON lines and CSV: the export format and the retention archive format.

A JSON line holds ``id``, every hashed field, ``prev_hash`` and ``hash``, so an
exported or archived range can be re-verified without the database
(``audit_verify --archive``).
"""

import csv
import gzip
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from django.db.models import QuerySet

from . import chain

EVENT_VALUES = ("id", *chain.PAYLOAD_FIELDS, "prev_hash", "hash")


def event_record(row: dict) -> dict:
    return {"id": row["id"], **chain.payload_of(row), "prev_hash": row["prev_hash"], "hash": row["hash"]}


def event_rows(queryset: QuerySet, *, chunk_size: int = 2000) -> Iterator[dict]:
    """Rows of ``queryset`` in id order as dicts, streamed from the database."""
    return queryset.order_by("id").values(*EVENT_VALUES).iterator(chunk_size=chunk_size)


def jsonl_lines(rows: Iterable[dict]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(event_record(row), ensure_ascii=False, separators=(",", ":")) + "\n"


def csv_lines(rows: Iterable[dict]) -> Iterator[str]:
    """CSV with a header; ``details`` is a JSON string column."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EVENT_VALUES)
    for row in rows:
        record = event_record(row)
        record["details"] = json.dumps(record["details"], sort_keys=True, ensure_ascii=False)
        writer.writerow(["" if record[field] is None else record[field] for field in EVENT_VALUES])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


FORMATS = {"jsonl": jsonl_lines, "csv": csv_lines}


def write_lines(lines: Iterable[str], *, output: str | None, stdout, mode: str = "w") -> None:
    """Write export lines to the file ``output`` (opened with ``mode``) or to a command's stdout."""
    if output:
        with open(output, mode, encoding="utf-8", newline="") as fh:
            fh.writelines(lines)
    else:
        for line in lines:
            stdout.write(line, ending="")


def read_archive(path: Path) -> Iterator[dict]:
    """Events of a gzip JSON-lines archive (or a plain .jsonl export), in file order."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
