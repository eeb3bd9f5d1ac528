"""OpenStack backups through nova's ``createBackup`` (server action), nova's API only: the
image's status, listing and delete go through nova's image proxy (``/images``), like snapshots.

- create: ``createBackup`` with ``backup_type`` "controlplane" (``BACKUP_TYPE``), ``rotation``
  ``ROTATION`` (so large that nova never rotates ours out: retention is the control plane's,
  through backup-delete operations) and image metadata ``cp_backup`` = our ref; the image is
  named ``cp-backup-<server>-<ref>``. An image of the server with our ref found first is
  followed instead (a retry after a crash). Done when the image is ``ACTIVE``; its size is
  reported for metering. Nova marks it ``image_type=backup`` and ``instance_uuid``.
- restore: nova has no restore; the server is **rebuilt from the backup image** (same id, ports,
  flavor, key pair and metadata; a stopped server stays stopped), as snapshot revert does.
- delete: the image is deleted; one already gone counts as deleted.
- list: the images whose metadata carry ``cp_backup`` and ``instance_uuid`` = the server. A
  backup image outlives its server (it is a glance image), like a backup storage.
"""

from __future__ import annotations

from typing import Any

from ..base import BackupInfo, DriverTask
from .client import translate

BACKUP_PREFIX = "cp-backup"
BACKUP_METADATA = "cp_backup"
BACKUP_TYPE = "controlplane"
ROTATION = 1_000_000  # nova deletes a server's backups beyond this count: never ours in practice
BACKUP_ACTIONS = ("backup_create", "backup_restore", "backup_delete")
GONE = ("DELETED", "KILLED")


def backup_name(backend_id: str, ref: str) -> str:
    return f"{BACKUP_PREFIX}-{backend_id}-{ref}"


def _metadata(image: Any) -> dict:
    return dict(getattr(image, "metadata", None) or {})


class OpenStackBackups:
    """Mixed into OpenStackDriver (``client``, ``_existing``, ``_handle``; restore and the poll
    are ``OpenStackSnapshots._rebuild_from_image`` and ``_poll_snapshot``)."""

    def _backup_images(self, backend_id: str) -> dict[str, Any]:
        """Our backup images of the server by ref (``cp_backup`` in their metadata)."""
        with translate(f"listing the backups of server {backend_id}"):
            images = list(self.client.conn.compute.images(details=True))
        found = {}
        for image in images:
            metadata = _metadata(image)
            if (
                metadata.get(BACKUP_METADATA)
                and metadata.get("instance_uuid") == backend_id
                and str(image.status).upper() not in GONE
            ):
                found[metadata[BACKUP_METADATA]] = image
        return found

    def backup_create(self, backend_id: str, *, ref: str) -> DriverTask:
        server = self._existing(backend_id)
        image = self._backup_images(backend_id).get(ref)
        if image is None:
            from openstack.compute.v2.server import Server

            body = {
                "createBackup": {
                    "name": backup_name(backend_id, ref),
                    "backup_type": BACKUP_TYPE,
                    "rotation": ROTATION,
                    "metadata": {BACKUP_METADATA: ref},
                }
            }
            with translate(f"taking backup {ref} of server {backend_id}"):
                response = Server(id=server.id)._action(self.client.conn.compute, body, "2.45")
            image_id = response.json()["image_id"]
        else:
            image_id = image.id
        return self._handle("backup_create", backend_id, image_id=image_id, ref=ref)

    def backup_restore(self, backend_id: str, *, ref: str) -> DriverTask:
        return self._rebuild_from_image("backup_restore", backend_id, self._backup_images(backend_id).get(ref), ref)

    def backup_delete(self, backend_id: str, *, ref: str) -> DriverTask:
        image = self._backup_images(backend_id).get(ref)
        if image is not None:
            with translate(f"deleting backup {ref}"):
                self.client.conn.compute.delete_image(image.id, ignore_missing=True)
        return self._handle("backup_delete", backend_id, done=True)

    def backup_list(self, backend_id: str) -> list[BackupInfo]:
        return [BackupInfo(ref=ref, size_bytes=image.size) for ref, image in self._backup_images(backend_id).items()]
