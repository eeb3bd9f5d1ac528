from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from billing.documents.gstr1 import Gstr1
from billing.periods import parse_month


class Command(BaseCommand):
    help = (
        "Write a month's GSTR-1 as a ZIP: the offline tool's JSON (B2B, B2CL, B2CS, EXP, CDNR, CDNUR, HSN, "
        "document summary) and CSVs with SAC and rate per row."
    )

    def add_arguments(self, parser):
        parser.add_argument("--month", required=True, help="YYYY-MM")
        parser.add_argument("--output", help="ZIP file to write (default: gstr1-MMYYYY.zip here)")

    def handle(self, *args, month, output=None, **options):
        first = parse_month(month, None)
        if first is None:
            raise CommandError(f"--month must look like 2025-06, not {month!r}.")
        report = Gstr1(first)
        target = Path(output or f"gstr1-{report.sections['fp']}.zip")
        target.write_bytes(report.zip())
        self.stdout.write(
            self.style.SUCCESS(
                f"GSTR-1 {report.sections['fp']}: {len(report.invoices)} invoices, {len(report.notes)} credit notes "
                f"-> {target}"
            )
        )
