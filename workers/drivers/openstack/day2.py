"""OpenStack resize and rebuild through nova, submit then poll.

- **resize**: the flavor with exactly the new plan's sizes (or ``settings.flavors[plan]``);
  ``resize_server`` (nova cold-migrates: the guest is always restarted, so ``resize_live`` is
  empty) → ``RESIZE`` … ``VERIFY_RESIZE`` → ``confirm_server_resize`` when the server now has
  the wanted flavor, ``revert_server_resize`` (and a failed operation) when it does not.
  A smaller disk is refused before nova is asked. Re-submitted after a crash: a server already
  in ``VERIFY_RESIZE`` is confirmed, one already on the flavor is done, one still resizing is
  followed.
- **rebuild**: ``rebuild_server`` with the new image, key pair and user data, and the server's
  metadata plus ``cp_rebuild_key`` (the rebuild operation's key; nova replaces the metadata
  with what a rebuild sends). The server keeps its UUID, ports (so its addresses) and flavor. A
  re-submit that finds its key in the metadata follows that rebuild instead of starting another.
"""

from __future__ import annotations

import logging
from typing import Any

from ..base import DriverTask, PermanentDriverError, ResizeSpec, SnapshotInfo, TaskStatus, TransientDriverError, VMSpec
from . import servers
from .client import Code, translate

logger = logging.getLogger(__name__)

REBUILD_METADATA = "cp_rebuild_key"


def flavor_sizes(server: Any) -> tuple[int, int, int]:
    """(vCPUs, RAM MiB, disk GiB) of the server's flavor (embedded since microversion 2.47)."""
    flavor = server.flavor
    get = flavor.get if isinstance(flavor, dict) else lambda name: getattr(flavor, name, None)
    return int(get("vcpus") or 0), int(get("ram") or 0), int(get("disk") or 0)


class OpenStackDay2:
    """Mixed into OpenStackDriver (``client``, ``settings``, ``_existing``, ``_server``, ``_handle``,
    ``_flavor_id``, ``_keypair``, ``_waiting``, ``_done``)."""

    # -- resize ---------------------------------------------------------------------
    def resize(self, backend_id: str, *, spec: ResizeSpec) -> DriverTask:
        server = self._existing(backend_id)
        wanted = (spec.vcpus, spec.memory_mib, spec.disk_gib)
        current = flavor_sizes(server)
        status = str(server.status or "").upper()
        if status == "VERIFY_RESIZE":  # a crash after nova finished: confirm (or revert) now
            return self._handle("resize", backend_id, wanted=list(wanted), step="verify")
        if status == "RESIZE" or server.task_state in ("resize_prep", "resize_migrating", "resize_finish"):
            return self._handle("resize", backend_id, wanted=list(wanted), step="resize")
        if current == wanted:
            return self._handle("resize", backend_id, done=True)
        if spec.disk_gib < current[2]:
            raise PermanentDriverError(
                f"Disks only grow: server {backend_id}'s flavor has {current[2]} GiB and cannot become "
                f"{spec.disk_gib} GiB.",
                code="disk_shrink",
            )
        flavor_id = self._flavor_id(
            VMSpec(
                name=server.name,
                idempotency_key="",
                vcpus=spec.vcpus,
                memory_mib=spec.memory_mib,
                disk_gib=spec.disk_gib,
                image_ref="",
                extra={"plan": spec.plan} if spec.plan else {},
            )
        )
        with translate(f"resizing server {backend_id}"):
            self.client.conn.compute.resize_server(backend_id, flavor_id)
        return self._handle("resize", backend_id, wanted=list(wanted), step="resize")

    def _poll_resize(self, task: DriverTask, server: Any, status: str) -> TaskStatus:
        if task.done:
            return self._done(server)
        wanted = tuple(task.data["wanted"])
        if status == "VERIFY_RESIZE":
            if flavor_sizes(server) != wanted:
                with translate(f"reverting the resize of server {task.backend_id}"):
                    self.client.conn.compute.revert_server_resize(task.backend_id)
                raise PermanentDriverError(
                    f"Nova resized server {task.backend_id} to {flavor_sizes(server)}, not {wanted}; reverted.",
                    code=Code.FAULT,
                )
            if task.data.get("step") == "confirm":  # asked already; nova's compute is on it
                return self._waiting(task, server, "confirming")
            try:
                with translate(f"confirming the resize of server {task.backend_id}"):
                    self.client.conn.compute.confirm_server_resize(task.backend_id)
            except TransientDriverError as exc:
                if exc.code != Code.BUSY:
                    raise
                # 409: confirmed meanwhile (a resubmit racing nova's compute); the next poll sees it
                return self._waiting(task, server, "confirming")
            return TaskStatus(
                done=False,
                task=DriverTask(ref=task.ref, backend_id=task.backend_id, data=dict(task.data, step="confirm")),
                poll_after=self.settings.poll_seconds,
                message="confirming the resize",
            )
        if status in ("ACTIVE", "SHUTOFF") and not server.task_state:
            if flavor_sizes(server) == wanted:
                return self._done(server)
            if task.data.get("step") == "resize":
                raise PermanentDriverError(
                    f"Nova did not resize server {task.backend_id}: it is back on its old flavor "
                    f"({servers.fault_message(server)}).",
                    code=Code.FAULT,
                )
        return self._waiting(task, server, "resizing" if task.data.get("step") == "resize" else "confirming")

    # -- rebuild --------------------------------------------------------------------
    def rebuild(self, backend_id: str, *, spec: VMSpec) -> DriverTask:
        server = self._existing(backend_id)
        metadata = dict(server.metadata or {})
        if metadata.get(REBUILD_METADATA) == spec.idempotency_key:
            return self._handle("rebuild", backend_id)  # submitted before a crash: follow it
        attrs: dict[str, Any] = {"metadata": {**metadata, REBUILD_METADATA: spec.idempotency_key}}
        if spec.ssh_public_key.strip():
            conn = self.client.for_project(spec.tenant.get("project_id"))
            attrs["key_name"] = self._keypair(conn, spec.ssh_public_key)
        else:
            attrs["key_name"] = None
        attrs["user_data"] = servers.encode_user_data(spec.user_data) if spec.user_data else None
        with translate(f"rebuilding server {backend_id}"):
            self.client.conn.compute.rebuild_server(backend_id, spec.image_ref, **attrs)
        return self._handle("rebuild", backend_id)

    def _poll_rebuild(self, task: DriverTask, server: Any, status: str) -> TaskStatus:
        # nova keeps a stopped server stopped across a rebuild, but it passes through ACTIVE on
        # the way (the power-off follows the rebuild): wait for the state it had, when recorded.
        expected = task.data.get("power")
        if status in ("ACTIVE", "SHUTOFF") and not server.task_state and expected in (None, status):
            return self._done(server)
        return self._waiting(task, server, "rebuilding")


SNAPSHOT_PREFIX = "cp-snap"
SNAPSHOT_ACTIONS = ("snapshot_create", "snapshot_revert", "snapshot_delete")


def snapshot_name(backend_id: str, ref: str) -> str:
    return f"{SNAPSHOT_PREFIX}-{backend_id}-{ref}"


class OpenStackSnapshots:
    """Image snapshots (``createImage``, nova's ``create_image_snapshot``), through nova's own API
    only: the image's status, listing and delete go through nova's image proxy (``/images``,
    served at the default microversion 2.1), so no image (glance) endpoint is needed.

    - create: an image named ``cp-snap-<server>-<ref>`` (metadata ``cp_snapshot`` = ref); an
      image of that name found first is followed instead (a retry after a crash). Done when the
      image is ``ACTIVE``; its size is reported for metering.
    - revert: nova has no revert; the server is **rebuilt from the snapshot image** (same id,
      ports, flavor, key pair and metadata; a stopped server stays stopped).
    - delete: the image is deleted; one already gone counts as deleted.
    """

    def _snapshot_image(self, backend_id: str, ref: str) -> Any | None:
        name = snapshot_name(backend_id, ref)
        with translate(f"looking up snapshot {ref}"):
            found = [image for image in self.client.conn.compute.images(details=True, name=name)]
        found = [image for image in found if image.name == name and str(image.status).upper() != "DELETED"]
        return found[0] if found else None

    def snapshot_create(self, backend_id: str, *, ref: str) -> DriverTask:
        server = self._existing(backend_id)
        image = self._snapshot_image(backend_id, ref)
        if image is None:
            from openstack.compute.v2.server import Server

            with translate(f"taking snapshot {ref} of server {backend_id}"):
                image_id = Server(id=server.id).create_image(
                    self.client.conn.compute, snapshot_name(backend_id, ref), {"cp_snapshot": ref}
                )
        else:
            image_id = image.id
        return self._handle("snapshot_create", backend_id, image_id=image_id, ref=ref)

    def snapshot_revert(self, backend_id: str, *, ref: str) -> DriverTask:
        return self._rebuild_from_image("snapshot_revert", backend_id, self._snapshot_image(backend_id, ref), ref)

    def _rebuild_from_image(self, action: str, backend_id: str, image: Any | None, ref: str) -> DriverTask:
        """Snapshot revert and backup restore: rebuild the server from our image (metadata kept)."""
        server = self._existing(backend_id)
        kind = action.split("_")[0]
        if image is None or str(image.status).upper() != "ACTIVE":
            message = f"{kind.capitalize()} {ref} does not exist on {self.config.name}."
            raise PermanentDriverError(message, code=Code.NOT_FOUND)
        power = str(server.status).upper() if str(server.status).upper() in ("ACTIVE", "SHUTOFF") else None
        with translate(f"rebuilding server {backend_id} from {kind} {ref}"):
            self.client.conn.compute.rebuild_server(backend_id, image.id, metadata=dict(server.metadata or {}))
        return self._handle(action, backend_id, ref=ref, power=power)

    def snapshot_delete(self, backend_id: str, *, ref: str) -> DriverTask:
        image = self._snapshot_image(backend_id, ref)
        if image is not None:
            with translate(f"deleting snapshot {ref}"):
                self.client.conn.compute.delete_image(image.id, ignore_missing=True)
        return self._handle("snapshot_delete", backend_id, done=True)

    def snapshot_list(self, backend_id: str) -> list[SnapshotInfo]:
        prefix = snapshot_name(backend_id, "")
        with translate(f"listing the snapshots of server {backend_id}"):
            images = list(self.client.conn.compute.images(details=True))
        return [
            SnapshotInfo(ref=image.name[len(prefix) :], size_bytes=image.size)
            for image in images
            if (image.name or "").startswith(prefix) and str(image.status).upper() not in ("DELETED", "KILLED")
        ]

    def _poll_snapshot(self, task: DriverTask, server: Any, status: str) -> TaskStatus:
        """Polls snapshot and backup tasks (backups.py): both are nova images of the server."""
        action = task.data["action"]
        kind = action.split("_")[0]  # "snapshot" or "backup"
        if task.done or action.endswith("_delete"):
            return self._done(server)
        if action in ("snapshot_revert", "backup_restore"):
            return self._poll_rebuild(task, server, status)
        with translate(f"reading {kind} {task.data['ref']}"):
            image = self.client.conn.compute.get_image(task.data["image_id"])
        state = str(image.status or "").upper()
        if state == "ACTIVE" and not server.task_state:
            done = self._done(server)
            return TaskStatus(
                done=True, progress=100, vm=done.vm, message=f"{kind} taken", result={"size_bytes": image.size}
            )
        if state in ("ERROR", "DELETED", "KILLED"):
            raise PermanentDriverError(f"OpenStack could not take {kind} {task.data['ref']}: image {state}.")
        return self._waiting(task, server, f"taking the {kind} ({state.lower() or 'queued'})")
