"""Storage pool work for the libvirt driver: base images, guest disks, uploads."""

from __future__ import annotations

from xml.etree import ElementTree

import libvirt

from ..base import PermanentDriverError
from .client import LibvirtClient, code_of
from .options import LibvirtSettings
from .templates import render

GIB = 1024**3


class Storage:
    """Volumes in the hypervisor's pool (``settings.pool``), through the driver's connection."""

    def __init__(self, client: LibvirtClient, settings: LibvirtSettings, hypervisor: str):
        self.client = client
        self.settings = settings
        self.hypervisor = hypervisor

    def pool(self, conn: libvirt.virConnect) -> libvirt.virStoragePool:
        name = self.settings.pool
        with self.client.errors(f"open storage pool {name}"):
            try:
                pool = conn.storagePoolLookupByName(name)
            except libvirt.libvirtError as exc:
                if code_of(exc) != libvirt.VIR_ERR_NO_STORAGE_POOL:
                    raise
                raise PermanentDriverError(
                    f"Storage pool {name!r} does not exist on {self.hypervisor}.", code="no_pool"
                ) from None
            if not pool.isActive():
                raise PermanentDriverError(f"Storage pool {name!r} on {self.hypervisor} is not active.", code="no_pool")
        return pool

    def find_volume(self, pool: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol | None:
        with self.client.errors(f"look up volume {name}"):
            try:
                return pool.storageVolLookupByName(name)
            except libvirt.libvirtError as exc:
                if code_of(exc) != libvirt.VIR_ERR_NO_STORAGE_VOL:
                    raise
        return None

    def image_volume(self, pool: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol:
        volume = self.find_volume(pool, name)
        if volume is None:  # a file copied into the pool's directory is known after a refresh
            with self.client.errors(f"refresh storage pool {self.settings.pool}"):
                pool.refresh(0)
            volume = self.find_volume(pool, name)
        if volume is None:
            raise PermanentDriverError(
                f"Image volume {name!r} is not in storage pool {self.settings.pool!r} on {self.hypervisor}.",
                code="no_image",
            )
        return volume

    def delete_volume(self, pool: libvirt.virStoragePool, name: str) -> None:
        volume = self.find_volume(pool, name)
        if volume is None:
            return
        with self.client.errors(f"delete volume {name}"):
            try:
                volume.delete(0)
            except libvirt.libvirtError as exc:
                if code_of(exc) != libvirt.VIR_ERR_NO_STORAGE_VOL:
                    raise

    def make_disk(self, pool: libvirt.virStoragePool, base: libvirt.virStorageVol, name: str, disk_gib: int) -> None:
        with self.client.errors(f"create disk {name}"):
            capacity = max(disk_gib * GIB, base.info()[1])
            if self.settings.disk_mode == "overlay":
                base_format = ElementTree.fromstring(base.XMLDesc(0)).find("target/format")
                backing_xml = render(
                    "backing-store",
                    path=base.path(),
                    format=base_format.get("type", "raw") if base_format is not None else "raw",
                )
                pool.createXML(render("volume", name=name, capacity=capacity, format="qcow2", backing_xml=backing_xml))
            else:  # copy: libvirt copies synchronously (qemu-img convert on the host)
                xml = render("volume", name=name, capacity=capacity, format="qcow2", backing_xml="")
                copy = pool.createXMLFrom(xml, base, 0)
                if copy.info()[1] < capacity:  # the copy keeps the base's size
                    copy.resize(capacity, 0)

    def upload_volume(self, conn: libvirt.virConnect, pool: libvirt.virStoragePool, name: str, data: bytes) -> None:
        """A raw volume with these bytes, streamed through libvirt (works on remote hosts)."""
        with self.client.errors(f"upload volume {name}"):
            volume = pool.createXML(render("volume", name=name, capacity=len(data), format="raw", backing_xml=""))
            stream = conn.newStream(0)
            try:
                volume.upload(stream, 0, len(data), 0)
                chunks = [data[i : i + 256 * 1024] for i in range(0, len(data), 256 * 1024)]
                stream.sendAll(lambda _stream, _nbytes, queue: queue.pop(0) if queue else b"", chunks)
                stream.finish()
            except libvirt.libvirtError:
                stream.abort()
                raise

    def boot_file(self, pool: libvirt.virStoragePool, ref: str) -> str:
        if ref.startswith("/"):
            return ref
        volume = self.image_volume(pool, ref)
        with self.client.errors(f"read the path of volume {ref}"):
            return volume.path()
