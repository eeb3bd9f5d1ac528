from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from audit import services


class Command(BaseCommand):
    help = (
        "Archive audit events older than N days to a gzip JSON-lines file and remove them, "
        "leaving a checkpoint so the remaining chain still verifies (docs/AUDIT.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than-days",
            type=int,
            default=settings.AUDIT_RETENTION_DAYS,
            help="Age in days (default: AUDIT_RETENTION_DAYS, %(default)s).",
        )
        parser.add_argument(
            "--archive-dir",
            type=Path,
            default=settings.AUDIT_ARCHIVE_DIR,
            help="Where the archive goes (default: AUDIT_ARCHIVE_DIR, %(default)s).",
        )

    def handle(self, *args, older_than_days, archive_dir, **options):
        result = services.retention_apply(older_than_days=older_than_days, archive_dir=archive_dir)
        if not result.removed:
            self.stdout.write(f"No audit events older than {older_than_days} days.")
            return
        checkpoint = result.checkpoint
        self.stdout.write(
            self.style.SUCCESS(
                f"Archived and removed {result.removed} events to {result.archive}; "
                f"checkpoint {checkpoint.pk} after event {checkpoint.last_event_id} ({checkpoint.last_event_hash})."
            )
        )
