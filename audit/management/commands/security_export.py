"""Ship security events to a SIEM: JSON lines or RFC 5424 syslog (docs/SECURITY.md).

Run from cron or a timer with ``--state-file``: each run writes the events after
the id stored there and stores the last one written, so nothing is sent twice
or skipped.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit import export, selectors, siem
from audit.management.commands.audit_export import _when
from audit.severity import Severity


class Command(BaseCommand):
    help = "Write security events (audit/severity.py) as JSON lines or RFC 5424 syslog lines, oldest first."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=sorted(siem.FORMATS), default="jsonl")
        parser.add_argument("--severity", choices=Severity.values, default=Severity.INFO, help="Minimum severity.")
        parser.add_argument("--since", type=_when, help="From this date or ISO date-time (inclusive).")
        parser.add_argument("--after-id", type=int, default=0, help="Only events with a larger id.")
        parser.add_argument("--state-file", type=Path, help="Read --after-id from it and store the last id written.")
        parser.add_argument("--output", "-o", help="File to append to (default: standard output).")

    def handle(self, *args, format, severity, since, after_id, state_file, output, **options):
        if state_file and state_file.exists():
            try:
                after_id = max(after_id, int(state_file.read_text().strip() or 0))
            except ValueError as exc:
                raise CommandError(f"{state_file} does not hold an event id.") from exc
        events = selectors.security_event_list(severity=severity).filter(id__gt=after_id)
        if since:
            events = events.filter(created_at__gte=since)
        last_id = after_id
        rows = export.event_rows(events)

        def tracked():
            nonlocal last_id
            for row in rows:
                last_id = row["id"]
                yield row

        export.write_lines(siem.FORMATS[format](tracked()), output=output, stdout=self.stdout, mode="a")
        if state_file:
            state_file.write_text(f"{last_id}\n")
