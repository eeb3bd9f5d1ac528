from datetime import date

from django.core.management.base import BaseCommand

from billing.documents.exports import documents_csv


class Command(BaseCommand):
    help = "Print the GST documents (invoices, credit notes, receipts) dated in a period as CSV."

    def add_arguments(self, parser):
        parser.add_argument("--start", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
        parser.add_argument("--end", type=date.fromisoformat, required=True, help="YYYY-MM-DD, inclusive")

    def handle(self, *args, start, end, **options):
        self.stdout.write(documents_csv(start=start, end=end), ending="")
