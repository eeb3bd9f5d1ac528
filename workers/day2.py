"""Submitting day-2 actions (snapshots, resize, rebuild) to a driver capability.

The engine (workers/engine.py) claims, polls, retries and writes back these
operations exactly like start or stop; only the submit differs, by action. What
to submit was decided by the service that created the operation
(compute/services/day2.py) and stored in ``Operation.params``; the write-back of
the result (snapshot rows, the new plan) is compute/services/day2_writeback.py.
"""

from __future__ import annotations

from collections.abc import Callable

from compute import selectors
from compute.choices import Action
from compute.models import Operation

from .drivers.base import Driver, DriverTask, PermanentDriverError, ResizeSpec, VMSpec


def _snapshot_create(operation: Operation, driver: Driver) -> DriverTask:
    return driver.snapshot_create(operation.vm.backend_id, ref=operation.params["ref"])


def _snapshot_revert(operation: Operation, driver: Driver) -> DriverTask:
    return driver.snapshot_revert(operation.vm.backend_id, ref=operation.params["ref"])


def _snapshot_delete(operation: Operation, driver: Driver) -> DriverTask:
    return driver.snapshot_delete(operation.vm.backend_id, ref=operation.params["ref"])


def _resize(operation: Operation, driver: Driver) -> DriverTask:
    target = operation.params["to"]
    spec = ResizeSpec(vcpus=target["vcpus"], memory_mib=target["memory_mib"], disk_gib=target["disk_gib"])
    return driver.resize(operation.vm.backend_id, spec=spec)


def _rebuild(operation: Operation, driver: Driver) -> DriverTask:
    """The new disk comes from ``params['image']``; the spec carries the rebuild operation's key,
    which the driver uses to find a rebuild it already did (no second disk after a crash)."""
    vm, params = operation.vm, operation.params
    reference = selectors.image_reference_get(image_id=params["image"], hypervisor=vm.hypervisor)
    if reference is None:
        raise PermanentDriverError(f"The image has no reference on {vm.hypervisor}.", code="no_image")
    spec = VMSpec(
        name=vm.name,
        idempotency_key=str(operation.idempotency_key),
        vcpus=vm.plan.vcpus,
        memory_mib=vm.plan.memory_mib,
        disk_gib=vm.plan.disk_gib,
        image_ref=reference.ref,
        guest_type=vm.plan.guest_type,
        ssh_public_key=params.get("ssh_public_key", vm.ssh_public_key),
        user_data=params.get("user_data", vm.user_data),
        extra={"image": reference.image.name, "project": vm.project.slug},
    )
    return driver.rebuild(vm.backend_id, spec=spec)


SUBMIT: dict[str, Callable[[Operation, Driver], DriverTask]] = {
    Action.SNAPSHOT_CREATE: _snapshot_create,
    Action.SNAPSHOT_REVERT: _snapshot_revert,
    Action.SNAPSHOT_DELETE: _snapshot_delete,
    Action.RESIZE: _resize,
    Action.REBUILD: _rebuild,
}
