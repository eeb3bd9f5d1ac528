"""Security events for a SIEM: JSON lines and syslog (RFC 5424). Format: docs/SECURITY.md.

A JSON line is the audit export's record (audit/export.py: id, every hashed
field, hashes) plus ``severity``. A syslog line is one RFC 5424 message:

    <PRI>1 TIMESTAMP HOSTNAME controlplane - ACTION [cp@32473 id=".." severity=".." actor=".."
    ip=".." request_id=".." target=".." project=".."] {details as JSON}

PRI is facility authpriv (10) × 8 + severity (critical 2, warning 4, info 6);
32473 is the documentation enterprise number (RFC 5612): filter on the SD-ID ``cp@32473``.
"""

import json
import socket
from collections.abc import Iterable, Iterator

from . import export
from .severity import Severity, severity_of

FACILITY_AUTHPRIV = 10
SYSLOG_SEVERITY = {Severity.CRITICAL: 2, Severity.WARNING: 4, Severity.INFO: 6}
SD_ID = "cp@32473"
APP_NAME = "controlplane"


def security_record(row: dict) -> dict:
    record = export.event_record(row)
    record["severity"] = str(severity_of(record["action"]) or Severity.INFO)
    return record


def jsonl_lines(rows: Iterable[dict]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(security_record(row), ensure_ascii=False, separators=(",", ":")) + "\n"


def _sd_value(value) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _token(value: str, limit: int) -> str:
    """An RFC 5424 header field: printable US-ASCII without spaces, or the nil value."""
    cleaned = "".join(ch for ch in value if 33 <= ord(ch) <= 126)[:limit]
    return cleaned or "-"


def syslog_line(record: dict, *, hostname: str) -> str:
    severity = Severity(record["severity"])
    params = {
        "id": record["id"],
        "severity": severity,
        "actor": record["actor"],
        "ip": record["ip_address"],
        "request_id": record["request_id"],
        "target": f"{record['target_type']}:{record['target_id']}" if record["target_type"] else "",
        "project": record["project_id"] or "",
    }
    structured = " ".join(f'{name}="{_sd_value(value)}"' for name, value in params.items())
    timestamp = record["created_at"].replace("+00:00", "Z")
    header = (
        f"<{FACILITY_AUTHPRIV * 8 + SYSLOG_SEVERITY[severity]}>1 {timestamp} {_token(hostname, 255)} "
        f"{APP_NAME} - {_token(record['action'], 32)}"
    )
    message = json.dumps(record["details"], sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return f"{header} [{SD_ID} {structured}] {message}\n"


def syslog_lines(rows: Iterable[dict], *, hostname: str | None = None) -> Iterator[str]:
    hostname = hostname or socket.gethostname()
    for row in rows:
        yield syslog_line(security_record(row), hostname=hostname)


FORMATS = {"jsonl": jsonl_lines, "syslog": syslog_lines}
