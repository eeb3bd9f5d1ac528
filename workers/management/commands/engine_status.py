from django.core.management.base import BaseCommand
from django.db.models import Count

from compute.choices import ACTIVE_OPERATION_STATES
from compute.models import Operation, VirtualMachine
from compute.services import operation_list_expired
from workers.selectors import worker_list_alive


class Command(BaseCommand):
    help = "What the engine is doing: active operations per hypervisor, expired leases, drift, live workers."

    def handle(self, *args, **options):
        rows = (
            Operation.objects.filter(state__in=ACTIVE_OPERATION_STATES)
            .values("hypervisor__name", "state")
            .annotate(n=Count("id"))
            .order_by("hypervisor__name")
        )
        self.stdout.write("Active operations:")
        for row in rows:
            self.stdout.write(f"  {row['hypervisor__name']:<24} {row['state']:<10} {row['n']}")
        expired = operation_list_expired()
        self.stdout.write(f"Running with expired lease (reaper will resume): {len(expired)}")
        for op in expired[:20]:
            self.stdout.write(f"  #{op.pk} {op.action} {op.vm} worker={op.worker} lease_until={op.lease_until}")
        failed = Operation.objects.filter(state="failed").order_by("-finished_at")[:10]
        self.stdout.write("Recent failures:")
        for op in failed:
            self.stdout.write(f"  #{op.pk} {op.action} {op.vm}: {op.error_message[:100]}")
        missing = VirtualMachine.objects.filter(missing_since__isnull=False).exclude(status="deleted").count()
        lost = VirtualMachine.objects.filter(lost_at__isnull=False).exclude(status="deleted").count()
        self.stdout.write(f"Drift: {missing} missing, {lost} lost")
        workers = list(worker_list_alive())
        self.stdout.write(f"Live workers: {len(workers)}")
        for worker in workers:
            self.stdout.write(f"  {worker.hostname} queues={','.join(worker.queues)} last_seen={worker.last_seen}")
