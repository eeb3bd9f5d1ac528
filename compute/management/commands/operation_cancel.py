from compute import services
from compute.management.operation_command import OperationCommand


class Command(OperationCommand):
    help = "Cancel pending operations by id."
    service = services.operation_cancel
    done = "operation {op.pk} cancelled"
