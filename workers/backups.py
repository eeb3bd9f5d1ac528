"""Backups on the worker side: submitting backup operations to the driver, and reconciling
backup storage against our Backup rows.

The engine (workers/engine.py) claims, polls, retries and writes back these operations like
every other (workers/day2.py routes their actions here); what to back up or restore was decided
by compute/services/backups.py and stored in ``Operation.params``.
"""

from __future__ import annotations

from collections.abc import Callable

from compute import services
from compute.choices import Action
from compute.models import Hypervisor, Operation

from .day2 import reconcile_listed
from .drivers.base import Capability, Driver, DriverTask


def _backup_create(operation: Operation, driver: Driver) -> DriverTask:
    return driver.backup_create(operation.vm.backend_id, ref=operation.params["ref"])


def _backup_restore(operation: Operation, driver: Driver) -> DriverTask:
    return driver.backup_restore(operation.vm.backend_id, ref=operation.params["ref"])


def _backup_delete(operation: Operation, driver: Driver) -> DriverTask:
    return driver.backup_delete(operation.vm.backend_id, ref=operation.params["ref"])


SUBMIT: dict[str, Callable[[Operation, Driver], DriverTask]] = {
    Action.BACKUP_CREATE: _backup_create,
    Action.BACKUP_RESTORE: _backup_restore,
    Action.BACKUP_DELETE: _backup_delete,
}


def reconcile_backups(hypervisor: Hypervisor, driver: Driver) -> dict:
    """Backups of every idle VM, where the driver has backups (workers/day2.py ``reconcile_listed``)."""
    if not driver.supports(Capability.BACKUPS):
        return {}
    return reconcile_listed(hypervisor, lister=driver.backup_list, reconcile=services.backup_reconcile, noun="backup")
