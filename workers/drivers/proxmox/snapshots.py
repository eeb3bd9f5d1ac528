"""Proxmox snapshots (QEMU and LXC) through PVE's snapshot API, as steps of the driver's
UPID machinery (steps.py: ``snapshot``, ``rollback``, ``delsnapshot``).

Snapshots are disk-only (``vmstate`` 0: no RAM state, so no state storage is needed and a
revert boots from the disk as it was). A rollback leaves the guest stopped, so reverting a
running guest runs ``start`` after it: the power state is what it was. Taking a snapshot
whose name exists, or deleting one that does not, counts as done (a retry after a crash).
"""

from __future__ import annotations

from ..base import DriverTask, PermanentDriverError, SnapshotInfo
from . import guests
from .client import Code


class ProxmoxSnapshots:
    """Mixed into ProxmoxDriver (which provides ``client``, ``_existing`` and ``_action``)."""

    def _snapshot_names(self, guest) -> list[str]:
        listed = self.client.get(guests.guest_path(guest.node, guest.kind, guest.vmid, "snapshot")) or []
        return [item["name"] for item in listed if item.get("name") and item["name"] != "current"]

    def snapshot_create(self, backend_id: str, *, ref: str) -> DriverTask:
        guest = self._existing(backend_id)
        return self._action("snapshot_create", guest, ["snapshot"], ref=ref)

    def snapshot_revert(self, backend_id: str, *, ref: str) -> DriverTask:
        guest = self._existing(backend_id)
        if ref not in self._snapshot_names(guest):
            raise PermanentDriverError(
                f"Snapshot {ref} does not exist on {self.config.name}.", code=Code.SNAPSHOT_MISSING
            )
        steps = ["rollback", "start"] if guest.status == "running" else ["rollback"]
        return self._action("snapshot_revert", guest, steps, ref=ref)

    def snapshot_delete(self, backend_id: str, *, ref: str) -> DriverTask:
        guest = self._existing(backend_id)
        if ref not in self._snapshot_names(guest):
            return self._done("snapshot_delete", backend_id)
        return self._action("snapshot_delete", guest, ["delsnapshot"], ref=ref)

    def snapshot_list(self, backend_id: str) -> list[SnapshotInfo]:
        return [SnapshotInfo(ref=name) for name in self._snapshot_names(self._existing(backend_id))]
