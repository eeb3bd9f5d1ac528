from django.core.management.base import BaseCommand, CommandError

from billing.selectors import ledger_problems


class Command(BaseCommand):
    help = "Check that every wallet's cached balance equals the sum of its ledger entries."

    def handle(self, *args, **options):
        problems = ledger_problems()
        for problem in problems:
            self.stderr.write(problem)
        if problems:
            raise CommandError(f"{len(problems)} wallet(s) do not match their ledger.")
        self.stdout.write(self.style.SUCCESS("Every wallet matches its ledger."))
