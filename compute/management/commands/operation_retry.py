from compute import services
from compute.management.operation_command import OperationCommand


class Command(OperationCommand):
    help = "Retry failed operations by id (same idempotency key, from scratch)."
    service = services.operation_retry
    done = "operation {op.pk} ({op.action}) queued again"
