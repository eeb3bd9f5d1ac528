"""Day-2 actions on the worker side: submitting them to a driver capability, and
reconciling snapshots.

The engine (workers/engine.py) claims, polls, retries and writes back these
operations exactly like start or stop; only the submit differs, by action. What
to submit was decided by the service that created the operation
(compute/services/day2.py) and stored in ``Operation.params``; the write-back of
the result (snapshot rows, the new plan) is compute/services/day2_writeback.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.utils import timezone

from compute import selectors, services
from compute.choices import Action
from compute.models import Hypervisor, Operation

from .drivers.base import Capability, Driver, DriverTask, ResizeSpec
from .specs import vm_spec


def _snapshot_create(operation: Operation, driver: Driver) -> DriverTask:
    return driver.snapshot_create(operation.vm.backend_id, ref=operation.params["ref"])


def _snapshot_revert(operation: Operation, driver: Driver) -> DriverTask:
    return driver.snapshot_revert(operation.vm.backend_id, ref=operation.params["ref"])


def _snapshot_delete(operation: Operation, driver: Driver) -> DriverTask:
    return driver.snapshot_delete(operation.vm.backend_id, ref=operation.params["ref"])


def _resize(operation: Operation, driver: Driver) -> DriverTask:
    target = operation.params["to"]
    spec = ResizeSpec(
        vcpus=target["vcpus"],
        memory_mib=target["memory_mib"],
        disk_gib=target["disk_gib"],
        plan=operation.params.get("plan_name", ""),
    )
    return driver.resize(operation.vm.backend_id, spec=spec)


def _rebuild(operation: Operation, driver: Driver) -> DriverTask:
    """The new disk comes from ``params['image']``; the spec carries the rebuild operation's key,
    which the driver uses to find a rebuild it already did (no second disk after a crash)."""
    params = operation.params
    spec = vm_spec(
        operation,
        image_id=params["image"],
        ssh_public_key=params.get("ssh_public_key"),
        user_data=params.get("user_data"),
    )
    return driver.rebuild(operation.vm.backend_id, spec=spec)


SUBMIT: dict[str, Callable[[Operation, Driver], DriverTask]] = {
    Action.SNAPSHOT_CREATE: _snapshot_create,
    Action.SNAPSHOT_REVERT: _snapshot_revert,
    Action.SNAPSHOT_DELETE: _snapshot_delete,
    Action.RESIZE: _resize,
    Action.REBUILD: _rebuild,
}


logger = logging.getLogger(__name__)


def reconcile_listed(hypervisor: Hypervisor, *, lister: Callable[[str], list], reconcile, noun: str) -> dict:
    """One ``lister(backend_id)`` call per idle VM, then one ``reconcile`` write-back for all; a VM
    whose listing failed is left out (an error never means "gone"). Used for backups too."""
    listed_at = timezone.now()
    listings: dict[int, list[str]] = {}
    for vm_id, backend_id in selectors.vm_list_for_snapshot_reconcile(hypervisor=hypervisor):
        try:
            listings[vm_id] = [item.ref for item in lister(backend_id)]
        except Exception as exc:
            logger.info("reconcile: listing %ss of %s failed: %s", noun, backend_id, exc)
    report = reconcile(hypervisor=hypervisor, listings=listings, listed_at=listed_at)
    return {
        f"{noun}s_missing": len(report["missing"]),
        f"{noun}s_unknown": sum(len(refs) for refs in report["unknown"].values()),
    }


def reconcile_snapshots(hypervisor: Hypervisor, driver: Driver) -> dict:
    """Snapshots of every idle VM, where the driver has snapshots."""
    if not driver.supports(Capability.SNAPSHOTS):
        return {}
    return reconcile_listed(
        hypervisor, lister=driver.snapshot_list, reconcile=services.snapshot_reconcile, noun="snapshot"
    )
