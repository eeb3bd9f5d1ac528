from django.core.management.base import BaseCommand, CommandError

from compute import services
from compute.models import VirtualMachine
from controlplane.errors import ServiceError


class Command(BaseCommand):
    help = "Ask a worker to read VMs' real state from their hypervisor and write it back (resets VMs in error)."

    def add_arguments(self, parser):
        parser.add_argument("vm_ids", nargs="+", type=int)

    def handle(self, *args, vm_ids, **options):
        for pk in vm_ids:
            vm = VirtualMachine.objects.select_related("hypervisor").filter(pk=pk).first()
            if vm is None:
                raise CommandError(f"No VM {pk}.")
            try:
                services.vm_resync_request(vm=vm, actor="operator:cli")
            except ServiceError as exc:
                raise CommandError(f"VM {pk}: {exc.message}") from exc
            self.stdout.write(f"resync of {vm.name} sent to {vm.hypervisor.queue}")
