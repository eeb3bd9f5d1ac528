"""libvirt backups: a full qcow2 copy of the guest's disk, kept as a volume in the backup
pool (``settings.backup_pool``, default the guest pool), named ``<domain>--<ref>.qcow2``.

- A **running** guest is backed up with ``backupBegin`` (push mode): QEMU copies a
  point-in-time image of the disk while the guest runs; the handle is polled (``jobStats``,
  with progress) until the job ends. libvirt removes the target of a failed job, so a backup
  volume with no backup job running is complete; a retry after a crash finds the job still
  running (and polls it) or the volume there (done).
- A **stopped** guest's disk is copied with ``createXMLFrom`` (``qemu-img convert`` on the
  host, inside the call).
- **Restore** powers the guest off (its disk is replaced, so nothing is lost by not shutting
  down gracefully), replaces the disk volume with a copy of the backup (a standalone qcow2,
  no backing file) and starts it again if it was running. Repeating it after a crash gives the
  same disk. It is refused while the guest has internal snapshots: they live inside the disk
  file being replaced (delete them first).
"""

from __future__ import annotations

import dataclasses
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import libvirt

from ..base import BackupInfo, DriverTask, PermanentDriverError, TaskStatus, TransientDriverError
from .storage import Storage
from .templates import render

BACKUP_STEP = "backup_job"
NO_JOB = (libvirt.VIR_DOMAIN_JOB_NONE,)
OFF = (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_CRASHED)


class LibvirtBackups:
    """Mixed into LibvirtDriver (which provides ``client``, ``storage``, ``settings``,
    ``_conn``, ``_require``, ``_state``, ``_power_on``, ``_destroy``, ``_vm``)."""

    # -- plumbing --------------------------------------------------------------------
    def _pool_named(self, name: str) -> libvirt.virStoragePool:
        """An active storage pool by name (the guest pool's checks and messages, storage.py)."""
        settings = dataclasses.replace(self.settings, pool=name)
        return Storage(self.client, settings, self.config.name).pool(self._conn())

    def _backup_pool(self) -> libvirt.virStoragePool:
        pool = self._pool_named(self.config.settings.get("backup_pool") or self.settings.pool)
        with self.client.errors(f"refresh storage pool {pool.name()}"):
            pool.refresh(0)  # backupBegin writes files libvirt's pool does not know of yet
        return pool

    @staticmethod
    def _backup_volume_name(dom: libvirt.virDomain, ref: str) -> str:
        return f"{dom.name()}--{ref}.qcow2"

    def _disk(self, dom: libvirt.virDomain) -> tuple[str, str, str]:
        """(pool, volume, target dev) of the guest's first disk."""
        with self.client.errors(f"read the disks of {dom.name()}"):
            root = ElementTree.fromstring(dom.XMLDesc(0))
        for disk in root.iter("disk"):
            source = disk.find("source")
            if disk.get("device") == "disk" and source is not None and source.get("volume"):
                return source.get("pool"), source.get("volume"), disk.find("target").get("dev")
        raise PermanentDriverError(f"{dom.name()} has no disk volume to back up.", code="no_disk")

    def _backup_job(self, dom: libvirt.virDomain) -> dict | None:
        """The backup job running on the guest, or None (a guest that is off runs no job)."""
        with self.client.errors(f"read the jobs of {dom.name()}"):
            if not dom.isActive():
                return None
            stats = dom.jobStats(0)
        if stats.get("type", libvirt.VIR_DOMAIN_JOB_NONE) in NO_JOB:
            return None
        if stats.get("operation") != libvirt.VIR_DOMAIN_JOB_OPERATION_BACKUP:
            raise TransientDriverError(f"{dom.name()} is busy with another job.", code="busy")
        return stats

    def _backup_task(self, backend_id: str, volume: str, *, done: bool) -> DriverTask:
        data = {"action": "backup_create", "step": BACKUP_STEP, "volume": volume}
        return DriverTask(ref=f"backup/{volume}", backend_id=backend_id, done=done, data=data)

    # -- interface -------------------------------------------------------------------
    def backup_create(self, backend_id: str, *, ref: str) -> DriverTask:
        dom = self._require(backend_id)
        pool = self._backup_pool()
        name = self._backup_volume_name(dom, ref)
        if self._backup_job(dom) is not None:  # ours, resumed after a crash (one job per guest)
            return self._backup_task(backend_id, name, done=False)
        if self.storage.find_volume(pool, name) is not None:
            return self._backup_task(backend_id, name, done=True)
        disk_pool, disk_volume, dev = self._disk(dom)
        source = self.storage.find_volume(self._pool_named(disk_pool), disk_volume)
        if source is None:
            raise PermanentDriverError(f"The disk {disk_volume} of {dom.name()} is missing.", code="no_disk")
        if self._state(dom) in OFF:
            with self.client.errors(f"copy the disk of {dom.name()} to {name}"):
                capacity = source.info()[1]
                pool.createXMLFrom(
                    render("volume", name=name, capacity=capacity, format="qcow2", backing_xml=""), source, 0
                )
            return self._backup_task(backend_id, name, done=True)
        with self.client.errors(f"read the path of backup pool {pool.name()}"):
            directory = ElementTree.fromstring(pool.XMLDesc(0)).findtext("target/path")
        xml = (
            "<domainbackup mode='push'><disks>"
            f"<disk name='{escape(dev)}' backup='yes' type='file'>"
            f"<target file='{escape(directory)}/{escape(name)}'/><driver type='qcow2'/></disk>"
            "</disks></domainbackup>"
        )
        with self.client.errors(f"begin the backup of {dom.name()}"):
            dom.backupBegin(xml, None, 0)
        return self._backup_task(backend_id, name, done=False)

    def _poll_backup(self, task: DriverTask) -> TaskStatus:
        dom = self._require(task.backend_id)
        job = self._backup_job(dom)
        if job is not None:
            total, done = job.get("data_total") or 0, job.get("data_processed") or 0
            progress = int(done * 100 / total) if total else None
            return TaskStatus(done=False, progress=progress, poll_after=1.0, message="copying the disk")
        volume = self.storage.find_volume(self._backup_pool(), task.data["volume"])
        if volume is None:
            with self.client.errors(f"read the last job of {dom.name()}"):
                last = dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
            reason = last.get("errmsg") or "the backup job ended without a copy"
            raise PermanentDriverError(f"Backup of {dom.name()} failed: {reason}.", code="backup_failed")
        with self.client.errors(f"read the size of {task.data['volume']}"):
            size = volume.info()[2]  # allocation: what the copy takes in the pool
        return TaskStatus(done=True, progress=100, vm=self._vm(dom), result={"size_bytes": size})

    def backup_restore(self, backend_id: str, *, ref: str) -> DriverTask:
        dom = self._require(backend_id)
        backup = self.storage.find_volume(self._backup_pool(), self._backup_volume_name(dom, ref))
        if backup is None:
            raise PermanentDriverError(f"Backup {ref} does not exist on {self.config.name}.", code="not_found")
        with self.client.errors(f"list the snapshots of {dom.name()}"):
            if dom.snapshotNum(0):
                raise PermanentDriverError(
                    f"{dom.name()} has snapshots inside the disk a restore replaces; delete them first.",
                    code="has_snapshots",
                )
        running = self._state(dom) not in OFF
        disk_pool, disk_volume, _ = self._disk(dom)
        pool = self._pool_named(disk_pool)
        self._destroy(dom)
        self.storage.delete_volume(pool, disk_volume)
        with self.client.errors(f"restore the disk of {dom.name()} from {ref}"):
            capacity = backup.info()[1]
            xml = render("volume", name=disk_volume, capacity=capacity, format="qcow2", backing_xml="")
            pool.createXMLFrom(xml, backup, 0)
        if running:
            self._power_on(dom)
        return DriverTask(ref=f"restore/{ref}", backend_id=backend_id, done=True, data={"action": "backup_restore"})

    def backup_delete(self, backend_id: str, *, ref: str) -> DriverTask:
        dom = self._require(backend_id)
        self.storage.delete_volume(self._backup_pool(), self._backup_volume_name(dom, ref))
        return DriverTask(ref=f"unbackup/{ref}", backend_id=backend_id, done=True, data={"action": "backup_delete"})

    def backup_list(self, backend_id: str) -> list[BackupInfo]:
        dom = self._require(backend_id)
        prefix = f"{dom.name()}--"
        pool = self._backup_pool()
        with self.client.errors(f"list backup pool {pool.name()}"):
            volumes = pool.listAllVolumes(0)
        return [
            BackupInfo(ref=v.name()[len(prefix) : -len(".qcow2")], size_bytes=v.info()[2])
            for v in volumes
            if v.name().startswith(prefix) and v.name().endswith(".qcow2")
        ]
