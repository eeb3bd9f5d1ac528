from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from billing.documents.gstr1 import Gstr1
from billing.periods import parse_month
from controlplane.errors import ServiceError


class Command(BaseCommand):
    help = (
        "Write a month's GSTR-1 as a ZIP: the offline tool's JSON (B2B, B2CL, B2CS, EXP, CDNR, CDNUR, HSN, "
        "document summary) and CSVs with SAC and rate per row."
    )

    def add_arguments(self, parser):
        parser.add_argument("--month", required=True, help="YYYY-MM")
        parser.add_argument("--gstin", help="The supplier GSTIN (default: the principal one of Billing settings)")
        parser.add_argument("--output", help="ZIP file to write (default: gstr1-MMYYYY.zip here)")

    def handle(self, *args, month, gstin=None, output=None, **options):
        first = parse_month(month, None)
        if first is None:
            raise CommandError(f"--month must look like 2025-06, not {month!r}.")
        try:
            report = Gstr1(first, gstin=gstin)
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        target = Path(output or f"{report.name}.zip")
        target.write_bytes(report.zip())
        self.stdout.write(
            self.style.SUCCESS(
                f"GSTR-1 {report.sections['fp']}: {len(report.invoices)} invoices, {len(report.notes)} credit notes "
                f"-> {target}"
            )
        )
