"""Proxmox backups (QEMU and LXC): ``vzdump`` to a storage, restore through the API, as steps
of the driver's UPID machinery (steps.py delegates ``vzdump``, ``restore``, ``delbackup`` here).

A backup is a vzdump archive in the storage ``backup_storage`` (hypervisor setting, default
"local"; it must allow the ``backup`` content type), in snapshot mode (the guest keeps running),
zstd-compressed, whose **notes** carry our ref ``cp-backup-<id>``: that is how the driver finds
it again (``GET …/storage/<storage>/content?content=backup&vmid=…``). Taking one whose notes
exist counts as done; while the guest is locked by a running vzdump (ours, resumed after a
crash) the submit is retried later instead of starting a second one. A finished backup reports
its archive's size (from that listing) for metering.

Restore: QEMU ``POST nodes/<node>/qemu`` with ``archive`` and ``force`` (PVE's qmrestore), LXC
``POST nodes/<node>/lxc`` with ``ostemplate=<archive>``, ``restore`` and ``force``; the guest must
be stopped, so a running guest is stopped first and started again after: its power state is
what it was. The guest's config (with our key marker) comes back from the archive. Delete
removes the archive volume; a missing one counts as deleted.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..base import BackupInfo, DriverTask, PermanentDriverError, TransientDriverError
from .client import Code, ProxmoxClient

STEPS = ("vzdump", "restore", "delbackup")


def submit_step(client: ProxmoxClient, step: str, data: dict[str, Any]) -> str | None:
    node, vmid = data["node"], data["vmid"]
    if step == "vzdump":
        return client.post(
            f"nodes/{node}/vzdump",
            vmid=vmid,
            storage=data["storage"],
            mode="snapshot",
            compress="zstd",
            **{"notes-template": data["ref"]},
        )
    if step == "restore":
        if data["kind"] == "qemu":
            return client.post(f"nodes/{node}/qemu", vmid=vmid, archive=data["volid"], force=1)
        return client.post(f"nodes/{node}/lxc", vmid=vmid, ostemplate=data["volid"], restore=1, force=1)
    return client.delete(f"nodes/{node}/storage/{data['storage']}/content/{data['volid']}")


class ProxmoxBackups:
    """Mixed into ProxmoxDriver (which provides ``client``, ``config``, ``_existing``, ``_locate``,
    ``_action`` and ``_done``; its ``_finished`` asks ``_backup_result`` for a backup's size)."""

    def _backup_storage(self) -> str:
        return self.config.settings.get("backup_storage") or "local"

    def _archives(self, guest) -> dict[str, dict]:
        """Our archives of the guest by ref (their notes)."""
        path = f"nodes/{guest.node}/storage/{self._backup_storage()}/content"
        listed = self.client.get(path, content="backup", vmid=guest.vmid) or []
        return {item["notes"].strip(): item for item in listed if (item.get("notes") or "").strip()}

    def backup_create(self, backend_id: str, *, ref: str) -> DriverTask:
        guest = self._existing(backend_id)
        if ref in self._archives(guest):
            done = self._done("backup_create", backend_id)
            return dataclasses.replace(done, data={**done.data, "ref": ref})  # the poll reports its size
        if guest.lock == "backup":
            raise TransientDriverError(f"Guest {backend_id} is being backed up already.", code=Code.LOCKED)
        return self._action("backup_create", guest, ["vzdump"], ref=ref, storage=self._backup_storage())

    def backup_restore(self, backend_id: str, *, ref: str) -> DriverTask:
        guest = self._existing(backend_id)
        archive = self._archives(guest).get(ref)
        if archive is None:
            raise PermanentDriverError(f"Backup {ref} does not exist on {self.config.name}.", code=Code.NOT_FOUND)
        steps = ["stop", "restore", "start"] if guest.status == "running" else ["restore"]
        return self._action("backup_restore", guest, steps, ref=ref, volid=archive["volid"])

    def backup_delete(self, backend_id: str, *, ref: str) -> DriverTask:
        guest = self._existing(backend_id)
        archive = self._archives(guest).get(ref)
        if archive is None:
            return self._done("backup_delete", backend_id)
        volid = archive["volid"]
        return self._action("backup_delete", guest, ["delbackup"], ref=ref, volid=volid, storage=self._backup_storage())

    def _backup_result(self, task: DriverTask) -> dict:
        """A finished backup's size (its archive's, as the storage lists it), for metering."""
        guest = self._locate(task.backend_id)
        archive = self._archives(guest).get(task.data.get("ref")) if guest is not None else None
        return {"size_bytes": archive["size"]} if archive and archive.get("size") else {}

    def backup_list(self, backend_id: str) -> list[BackupInfo]:
        guest = self._existing(backend_id)
        return [BackupInfo(ref=ref, size_bytes=item.get("size")) for ref, item in self._archives(guest).items()]
