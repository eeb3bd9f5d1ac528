"""Celery tasks. Thin: take ids, call the engine (workers/engine.py).

Operation tasks are routed to the hypervisor's queue by the publisher
(compute/dispatch.py); housekeeping runs on the control queue from beat.
"""

import socket

from celery import shared_task
from django.conf import settings

from compute import services as compute_services
from compute.services import alerts
from compute.services import metrics as metrics_services

from . import engine, metrics, rdns


def _worker_name(task) -> str:
    return task.request.hostname or socket.gethostname()


@shared_task(name="ping")
def ping(value=None):
    """Round trip through the broker; returns who ran it."""
    return {"value": value, "hostname": socket.gethostname()}


@shared_task(bind=True, name="execute_operation")
def execute_operation(self, operation_id: int) -> str:
    return engine.execute_operation(operation_id, worker=_worker_name(self))


@shared_task(name="poll_operation")
def poll_operation(operation_id: int, token: str) -> str:
    return engine.poll_operation(operation_id, token)


@shared_task(name="apply_reverse_dns")
def apply_reverse_dns(record_id: int) -> str:
    return rdns.apply_record(record_id)


@shared_task(name="relay_reverse_dns")
def relay_reverse_dns() -> dict:
    return rdns.relay()


@shared_task(name="relay_pending_operations")
def relay_pending_operations() -> dict:
    return engine.relay_pending_operations()


@shared_task(name="reap_expired_operations")
def reap_expired_operations() -> dict:
    return engine.reap_expired_operations()


@shared_task(name="reconcile_hypervisors")
def reconcile_hypervisors() -> list:
    return engine.reconcile_all()


@shared_task(name="resync_vm")
def resync_vm(vm_id: int) -> str:
    return engine.resync_vm(vm_id)


@shared_task(name="check_hypervisor")
def check_hypervisor(hypervisor_id: int) -> dict:
    return engine.check_hypervisor(hypervisor_id)


@shared_task(name="collect_metrics_all")
def collect_metrics_all() -> dict:
    return metrics.collect_metrics_all()


@shared_task(
    name="collect_metrics",
    soft_time_limit=settings.VM_METRICS["COLLECT_BUDGET_SECONDS"],
    time_limit=settings.VM_METRICS["COLLECT_BUDGET_SECONDS"] + 10,
)
def collect_metrics(hypervisor_id: int) -> dict:
    """One round; past its budget the round is abandoned (a gap), never left holding a worker slot."""
    return metrics.collect_metrics(hypervisor_id)


@shared_task(name="rollup_metrics")
def rollup_metrics() -> dict:
    return metrics_services.metrics_rollup()


@shared_task(name="expire_metrics")
def expire_metrics() -> dict:
    return metrics_services.metrics_expire()


@shared_task(name="evaluate_metric_alerts")
def evaluate_metric_alerts() -> dict:
    return alerts.alerts_evaluate()


@shared_task(name="run_backup_schedules")
def run_backup_schedules() -> dict:
    """Beat: one backup operation per due schedule; retention deletes (compute/services/backups.py)."""
    return compute_services.backup_schedules_run()
