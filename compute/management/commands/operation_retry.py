from django.core.management.base import BaseCommand, CommandError

from compute import services
from compute.models import Operation
from controlplane.errors import ServiceError


class Command(BaseCommand):
    help = "Retry failed operations by id (same idempotency key, from scratch)."

    def add_arguments(self, parser):
        parser.add_argument("operation_ids", nargs="+", type=int)

    def handle(self, *args, operation_ids, **options):
        for pk in operation_ids:
            operation = Operation.objects.filter(pk=pk).first()
            if operation is None:
                raise CommandError(f"No operation {pk}.")
            try:
                services.operation_retry(operation=operation, actor="operator:cli")
            except ServiceError as exc:
                raise CommandError(f"Operation {pk}: {exc.message}") from exc
            self.stdout.write(f"operation {pk} ({operation.action}) queued again")
