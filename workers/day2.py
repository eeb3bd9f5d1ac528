"""Submitting day-2 actions (snapshots, resize) to a driver capability.

The engine (workers/engine.py) claims, polls, retries and writes back these
operations exactly like start or stop; only the submit differs, by action. What
to submit was decided by the service that created the operation
(compute/services/day2.py) and stored in ``Operation.params``; the write-back of
the result (snapshot rows, the new plan) is compute/services/day2_writeback.py.
"""

from __future__ import annotations

from collections.abc import Callable

from compute.choices import Action
from compute.models import Operation

from .drivers.base import Driver, DriverTask, ResizeSpec


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


SUBMIT: dict[str, Callable[[Operation, Driver], DriverTask]] = {
    Action.SNAPSHOT_CREATE: _snapshot_create,
    Action.SNAPSHOT_REVERT: _snapshot_revert,
    Action.SNAPSHOT_DELETE: _snapshot_delete,
    Action.RESIZE: _resize,
}
