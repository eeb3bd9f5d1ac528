from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit import selectors


class Command(BaseCommand):
    help = (
        "Walk the audit hash chain (from the latest retention checkpoint) and name the first broken event; "
        "with --archive, check a retention archive against its checkpoints. Exit status 1 when broken."
    )

    def add_arguments(self, parser):
        parser.add_argument("--archive", type=Path, action="append", default=[], help="A retention archive to check.")

    def handle(self, *args, archive, **options):
        reports = [(f"archive {path}", selectors.archive_verify(path=path)) for path in archive]
        if not archive:
            reports.append(("audit chain", selectors.chain_verify()))
        failed = []
        for name, report in reports:
            if report.ok:
                head = f"head event {report.head_id}" if report.head_id is not None else "no events"
                self.stdout.write(f"{name}: OK, {report.checked} events verified; {head}, hash {report.head_hash}")
            elif report.broken_id is not None:
                failed.append(f"{name}: BROKEN at event {report.broken_id}: {report.reason}")
            else:
                failed.append(f"{name}: BROKEN: {report.reason}")
        if failed:
            raise CommandError("\n".join(failed))
