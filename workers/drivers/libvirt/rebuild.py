"""libvirt rebuild (``Capability.REBUILD``): a new disk (overlay or copy of the new image's
base volume) and a new cloud-init seed, swapped into the same domain.

The domain keeps its UUID, name, MAC address (so its DHCP lease or static address) and
sizes; only the ``vda`` source, the seed CD-ROM, the boot kernel/initrd of a kernel-boot
image and our metadata change, in one ``defineXML`` of the edited persistent definition.
That define is the switch: before it the domain uses the old disk, after it the new one.

Crash safety (the rebuild operation's key names the new volumes ``<domain>-disk-<key>.qcow2``
and ``<domain>-seed-<key>.iso``):

1. The metadata first records ``<cp:rebuild key=… start=…/>`` (whether the guest ran, so a
   retry that finds it off still knows to start it), then the guest is powered off (its
   disk is being thrown away; nothing to shut down cleanly for).
2. Leftover new volumes of an interrupted attempt (never referenced by the domain) are
   deleted, the new ones written, the definition switched.
3. After the switch every volume of this domain's that the definition does not name is
   deleted (the old disk and seed). A retry that finds the switch done only does this and
   the start; so the domain always has exactly one disk and, once the operation ends, the
   pool holds exactly one.

Internal snapshots live inside the old disk: a domain with snapshots is refused ("delete its
snapshots first") rather than left with snapshot records pointing at a deleted file.
"""

from __future__ import annotations

from xml.etree import ElementTree

import libvirt

from ..base import DriverTask, PermanentDriverError, VMSpec
from .domain import NS_URI, Instance, wants_seed
from .options import ImageRef
from .seed import build_iso, nocloud_files
from .templates import render, render_each

ElementTree.register_namespace("cp", NS_URI)
OFF = (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_CRASHED)
NS = f"{{{NS_URI}}}"


def _tag(key: str) -> str:
    return key.replace("-", "")[:12]


def _metadata_xml(instance: Instance, volumes: tuple[str, ...], *, key: str, start: bool, qualified: bool) -> str:
    """Our ``<cp:instance>`` element with the rebuild marker; unqualified for ``setMetadata``
    (libvirt puts it in our namespace itself)."""
    volume_xml = render_each("metadata-volume", [{"volume": v} for v in volumes])
    hard_stop = "" if instance.hard_stop_after is None else instance.hard_stop_after
    xml = (
        f"<cp:instance xmlns:cp='{NS_URI}'>"
        f"<cp:idempotency-key>{instance.idempotency_key}</cp:idempotency-key>"
        f"<cp:hard-stop-after>{hard_stop}</cp:hard-stop-after>{volume_xml}"
        f"<cp:rebuild key='{key}' start='{int(start)}'/></cp:instance>"
    )
    return xml if qualified else xml.replace("cp:", "").replace(f" xmlns:cp='{NS_URI}'", "")


def _marker(root: ElementTree.Element) -> dict | None:
    element = root.find(f"metadata/{NS}instance/{NS}rebuild")
    return None if element is None else {"key": element.get("key"), "start": element.get("start") == "1"}


def _vda(root: ElementTree.Element) -> ElementTree.Element:
    for disk in root.findall("devices/disk"):
        target = disk.find("target")
        if disk.get("device") == "disk" and target is not None and target.get("dev") == "vda":
            return disk
    raise PermanentDriverError("The domain has no vda disk to replace.", code="no_disk")


class LibvirtRebuild:
    """Mixed into LibvirtDriver (``client``, ``storage``, ``settings``, ``_require``, ``_state``,
    ``_instance``, ``_instances``, ``_destroy``, ``_conn``)."""

    def rebuild(self, backend_id: str, *, spec: VMSpec) -> DriverTask:
        dom = self._require(backend_id)
        conn = self._conn()
        pool = self.storage.pool(conn)
        name = dom.name()
        tag = _tag(spec.idempotency_key)
        disk = f"{name}-disk-{tag}.qcow2"
        with self.client.errors(f"read the definition of {name}"):
            root = ElementTree.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        instance = self._instance(dom) or Instance(spec.idempotency_key, None, ())
        marker = _marker(root)
        if _vda(root).find("source").get("volume") != disk:
            start = self._rebuild_switch(dom, pool, root, instance, marker, spec, disk)
        else:
            start = bool(marker and marker["start"])
        self._rebuild_clean(dom, pool)
        data = {"action": "rebuild", "step": "start"} if start else {"action": "rebuild"}
        return DriverTask(ref=f"rebuild/{backend_id}/{tag}", backend_id=backend_id, done=not start, data=data)

    def _rebuild_switch(self, dom, pool, root, instance, marker, spec: VMSpec, disk: str) -> bool:
        name, key = dom.name(), spec.idempotency_key
        with self.client.errors(f"count the snapshots of {name}"):
            if dom.snapshotNum(0):
                raise PermanentDriverError(
                    f"{name} has snapshots, which live inside its disk; delete them before rebuilding.",
                    code="has_snapshots",
                )
        image = ImageRef.parse(spec.image_ref)
        base = self.storage.image_volume(pool, image.volume)
        if marker and marker["key"] == key:
            start = marker["start"]  # a retry: the first attempt recorded whether the guest ran
        else:
            start = self._state(dom) not in OFF
            flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG | (libvirt.VIR_DOMAIN_AFFECT_LIVE if start else 0)
            with self.client.errors(f"record the rebuild on {name}"):
                xml = _metadata_xml(instance, instance.volumes, key=key, start=start, qualified=False)
                dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, xml, "cp", NS_URI, flags)
        self._destroy(dom)
        seed = f"{name}-seed-{_tag(key)}.iso" if wants_seed(spec, image, self.settings) else None
        for leftover in (disk, seed):  # of an attempt that crashed before its define
            if leftover:
                self.storage.delete_volume(pool, leftover)
        self.storage.make_disk(pool, base, disk, spec.disk_gib)
        if seed:
            files = nocloud_files(
                instance_id=key,
                hostname=spec.name,
                ssh_public_key=spec.ssh_public_key,
                user_data=spec.user_data,
                network=spec.network,
            )
            self.storage.upload_volume(self._conn(), pool, seed, build_iso(files))
        volumes = tuple(v for v in (disk, seed) if v)
        self._edit_definition(root, pool, image, disk, seed)
        metadata = root.find("metadata")
        for old in metadata.findall(f"{NS}instance"):
            metadata.remove(old)
        metadata.append(ElementTree.fromstring(_metadata_xml(instance, volumes, key=key, start=start, qualified=True)))
        with self.client.errors(f"switch {name} to its new disk"):
            self._conn().defineXML(ElementTree.tostring(root, encoding="unicode"))
        self._instances[dom.UUIDString()] = Instance(instance.idempotency_key, instance.hard_stop_after, volumes)
        return start

    def _edit_definition(self, root, pool, image: ImageRef, disk: str, seed: str | None) -> None:
        _vda(root).find("source").set("volume", disk)
        devices = root.find("devices")
        for cdrom in [d for d in devices.findall("disk") if d.get("device") == "cdrom"]:
            source = cdrom.find("source")
            if source is not None and source.get("pool") == self.settings.pool:
                devices.remove(cdrom)  # our seed (the only CD-ROM we attach)
        if seed:
            sata = "q35" in self.settings.machine
            fragment = render(
                "seed-cdrom",
                pool=self.settings.pool,
                volume=seed,
                dev="sda" if sata else "hdc",
                bus="sata" if sata else "ide",
            )
            devices.insert(list(devices).index(_vda(root)) + 1, ElementTree.fromstring(fragment))
        os_element = root.find("os")
        for tag, ref in (("kernel", image.kernel), ("initrd", image.initrd)):
            element = os_element.find(tag)
            if element is not None and ref:
                element.text = self.storage.boot_file(pool, ref)
        cmdline = os_element.find("cmdline")
        if cmdline is not None and image.cmdline is not None:
            cmdline.text = image.cmdline

    def _rebuild_clean(self, dom, pool) -> None:
        """Delete this domain's volumes that its definition no longer names (old disk and seed)."""
        name = dom.name()
        with self.client.errors(f"list the volumes of {name}"):
            root = ElementTree.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
            pool.refresh(0)
            names = pool.listVolumes()
        used = {
            source.get("volume")
            for source in root.findall("devices/disk/source")
            if source.get("pool") == self.settings.pool
        }
        for volume in names:
            if volume.startswith((f"{name}-disk", f"{name}-seed")) and volume not in used:
                self.storage.delete_volume(pool, volume)
