"""Shared shape of the commands that act on operations by id (operation_retry, operation_cancel)."""

from django.core.management.base import BaseCommand, CommandError

from compute.models import Operation
from controlplane.errors import ServiceError


class OperationCommand(BaseCommand):
    """Subclasses set ``help``, ``service`` (a compute service taking operation= and actor=)
    and ``done`` (the line printed for each operation, formatted with ``op``)."""

    service = None
    done = ""

    def add_arguments(self, parser):
        parser.add_argument("operation_ids", nargs="+", type=int)

    def handle(self, *args, operation_ids, **options):
        for pk in operation_ids:
            operation = Operation.objects.filter(pk=pk).first()
            if operation is None:
                raise CommandError(f"No operation {pk}.")
            try:
                type(self).service(operation=operation, actor="operator:cli")
            except ServiceError as exc:
                raise CommandError(f"Operation {pk}: {exc.message}") from exc
            self.stdout.write(self.done.format(op=operation))
