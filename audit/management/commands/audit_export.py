from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Project
from audit import export
from audit.models import AuditEvent


def _when(value: str) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        raise CommandError(f"Not a date or ISO date-time: {value!r}")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


class Command(BaseCommand):
    help = "Write audit events as JSON lines or CSV (to a file or standard output), in chain order."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=sorted(export.FORMATS), default="jsonl")
        parser.add_argument("--output", "-o", help="File to write (default: standard output).")
        parser.add_argument("--project", help="Only this project's events (slug).")
        parser.add_argument("--action", help="Only this action, or every action under a prefix ending in '.'.")
        parser.add_argument("--since", type=_when, help="From this date or ISO date-time (inclusive).")
        parser.add_argument("--until", type=_when, help="Before this date or ISO date-time.")

    def handle(self, *args, format, output, project, action, since, until, **options):
        events = AuditEvent.objects.all()
        if project:
            found = Project.objects.filter(slug=project).first()
            if found is None:
                raise CommandError(f"No project with slug {project!r}.")
            events = events.filter(project=found)
        if action:
            events = events.filter(action__startswith=action) if action.endswith(".") else events.filter(action=action)
        if since:
            events = events.filter(created_at__gte=since)
        if until:
            events = events.filter(created_at__lt=until)
        export.write_lines(export.FORMATS[format](export.event_rows(events)), output=output, stdout=self.stdout)
