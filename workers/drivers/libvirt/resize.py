"""libvirt resize (``Capability.RESIZE``): vCPU and memory in the domain's persistent
definition, the disk grown in place.

- **Disk** grows live: ``blockResize`` on a running domain (QEMU's ``block_resize``; the
  guest sees the new size at once), the volume's own ``resize`` on a stopped one. A smaller
  disk is refused before anything changes. So a disk-only resize never restarts the guest
  (``resize_live``).
- **vCPU and memory** are written with ``setVcpusFlags`` / ``setMemoryFlags`` on the
  persistent definition (``VIR_DOMAIN_AFFECT_CONFIG``), maximum first when growing, current
  first when shrinking, so maximum = current afterwards as at create. A running guest is shut
  down first (ACPI, re-sent every ``shutdown_retry_seconds``, powered off after its hard-stop
  time like a stop) and started again: our domains have no balloon (``memballoon none``) and
  the busybox/cloud guests cannot be trusted to give up a hot-unplugged vCPU, so no live
  change of either is offered and the user is told "the VM will be restarted".

Every step compares what the domain has with the target, so a poll repeated after a worker
crash redoes nothing that is done; ``was_running`` in the handle says whether to start it
again (the handle is stored before the first shutdown is sent).
"""

from __future__ import annotations

import dataclasses
import time
from xml.etree import ElementTree

import libvirt

from ..base import DriverTask, PermanentDriverError, ResizeSpec, TaskStatus
from .storage import GIB

KIB_PER_MIB = 1024
OFF = (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_CRASHED)
CONFIG = libvirt.VIR_DOMAIN_AFFECT_CONFIG


def _kib(element: ElementTree.Element | None) -> int:
    if element is None:
        return 0
    factor = {"KiB": 1, "k": 1, "MiB": 1024, "M": 1024, "GiB": 1024**2, "G": 1024**2, "b": 1 / 1024, "bytes": 1 / 1024}
    return int(int(element.text or 0) * factor.get(element.get("unit", "KiB"), 1))


def domain_sizes(xml: str) -> dict:
    """vCPUs (current), memory (MiB, current) and the ``vda`` disk's source of a domain XML."""
    root = ElementTree.fromstring(xml)
    vcpu = root.find("vcpu")
    current = root.find("currentMemory")
    memory_kib = _kib(current if current is not None else root.find("memory"))
    disk = next(
        (d for d in root.findall("devices/disk") if d.get("device") == "disk" and d.find("target").get("dev") == "vda"),
        None,
    )
    source = disk.find("source") if disk is not None else None
    return {
        "vcpus": int(vcpu.get("current") or vcpu.text),
        "max_vcpus": int(vcpu.text),
        "memory_mib": memory_kib // KIB_PER_MIB,
        "max_memory_mib": _kib(root.find("memory")) // KIB_PER_MIB,
        "disk_volume": source.get("volume") if source is not None else None,
        "disk_file": source.get("file") if source is not None else None,
    }


class LibvirtResize:
    """Mixed into LibvirtDriver (``client``, ``storage``, ``settings``, ``_require``, ``_state``,
    ``_instance``, ``_send_shutdown``, ``_destroy``, ``_power_on``, ``_vm``, ``_conn``)."""

    def _disk_volume(self, dom: libvirt.virDomain, sizes: dict) -> libvirt.virStorageVol:
        pool = self.storage.pool(self._conn())
        volume = self.storage.find_volume(pool, sizes["disk_volume"]) if sizes["disk_volume"] else None
        if volume is None:
            raise PermanentDriverError(f"{dom.name()} has no disk volume in pool {self.settings.pool}.", code="no_disk")
        return volume

    def _config_sizes(self, dom: libvirt.virDomain) -> dict:
        with self.client.errors(f"read the definition of {dom.name()}"):
            return domain_sizes(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))

    def resize(self, backend_id: str, *, spec: ResizeSpec) -> DriverTask:
        dom = self._require(backend_id)
        sizes = self._config_sizes(dom)
        with self.client.errors(f"read the disk size of {dom.name()}"):
            capacity = self._disk_volume(dom, sizes).info()[1]
        if spec.disk_gib * GIB < capacity:
            raise PermanentDriverError(
                f"Disks only grow: {dom.name()}'s disk has {capacity / GIB:g} GiB "
                f"and cannot become {spec.disk_gib} GiB.",
                code="disk_shrink",
            )
        instance = self._instance(dom)
        hard_stop = self.settings.shutdown_timeout
        if instance and instance.hard_stop_after is not None:
            hard_stop = instance.hard_stop_after
        now = time.time()
        task = DriverTask(
            ref=f"resize/{backend_id}",
            backend_id=backend_id,
            data={
                "action": "resize",
                "step": "resize",
                "spec": dataclasses.asdict(spec),
                "was_running": self._state(dom) not in OFF,
                "started_at": now,
                "sent_at": None,
                "deadline": now + hard_stop if hard_stop > 0 else None,
            },
        )
        status = self._poll_resize(task)  # the disk and a stopped guest's sizes change at once
        if status.done:
            return dataclasses.replace(task, done=True)
        return status.task or task

    def _grow_disk(self, dom: libvirt.virDomain, running: bool, disk_gib: int) -> None:
        volume = self._disk_volume(dom, self._config_sizes(dom))
        target = disk_gib * GIB
        with self.client.errors(f"grow the disk of {dom.name()} to {disk_gib} GiB"):
            if volume.info()[1] >= target:
                return
            if running:  # QEMU resizes the image under the running guest
                dom.blockResize("vda", target, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
            else:
                volume.resize(target, 0)

    def _set_cpu_memory(self, dom: libvirt.virDomain, spec: ResizeSpec) -> None:
        """Persistent definition only (the domain is off): maximum = current = target."""
        sizes = self._config_sizes(dom)
        kib = spec.memory_mib * KIB_PER_MIB
        with self.client.errors(f"set {dom.name()} to {spec.vcpus} vCPU / {spec.memory_mib} MiB"):
            if (sizes["vcpus"], sizes["max_vcpus"]) != (spec.vcpus, spec.vcpus):
                if spec.vcpus > sizes["max_vcpus"]:
                    dom.setVcpusFlags(spec.vcpus, CONFIG | libvirt.VIR_DOMAIN_VCPU_MAXIMUM)
                    dom.setVcpusFlags(spec.vcpus, CONFIG)
                else:
                    dom.setVcpusFlags(spec.vcpus, CONFIG)
                    dom.setVcpusFlags(spec.vcpus, CONFIG | libvirt.VIR_DOMAIN_VCPU_MAXIMUM)
            if (sizes["memory_mib"], sizes["max_memory_mib"]) != (spec.memory_mib, spec.memory_mib):
                if spec.memory_mib > sizes["max_memory_mib"]:
                    dom.setMemoryFlags(kib, CONFIG | libvirt.VIR_DOMAIN_MEM_MAXIMUM)
                    dom.setMemoryFlags(kib, CONFIG)
                else:
                    dom.setMemoryFlags(kib, CONFIG)
                    dom.setMemoryFlags(kib, CONFIG | libvirt.VIR_DOMAIN_MEM_MAXIMUM)

    def _poll_resize(self, task: DriverTask) -> TaskStatus:
        data = task.data
        spec = ResizeSpec(**data["spec"])
        dom = self._require(task.backend_id)
        state = self._state(dom)
        running = state not in OFF
        self._grow_disk(dom, running, spec.disk_gib)
        if running:
            with self.client.errors(f"read the live sizes of {dom.name()}"):
                live = domain_sizes(dom.XMLDesc(0))
            if (live["vcpus"], live["memory_mib"]) == (spec.vcpus, spec.memory_mib):
                return TaskStatus(done=True, progress=100, vm=self._vm(dom, addresses=True), message="resized")
            return self._resize_shutdown(task, dom)
        self._set_cpu_memory(dom, spec)
        if data["was_running"]:
            self._power_on(dom)
        return TaskStatus(done=True, progress=100, vm=self._vm(dom, addresses=True), message="resized")

    def _resize_shutdown(self, task: DriverTask, dom: libvirt.virDomain) -> TaskStatus:
        """The guest runs with the old vCPU/memory: shut it down (re-sending the ACPI press), or
        power it off past its hard-stop time; the next poll applies the sizes and starts it."""
        data, now = task.data, time.time()
        deadline = data.get("deadline")
        if deadline is not None and now >= deadline:
            self._destroy(dom)
            return TaskStatus(done=False, poll_after=0, message="powered off after no clean shutdown")
        replacement = None
        if data.get("sent_at") is None or now - data["sent_at"] >= self.settings.shutdown_retry_seconds:
            self._send_shutdown(dom)
            replacement = dataclasses.replace(task, data={**data, "sent_at": now})
        wait = self.settings.shutdown_retry_seconds
        if deadline is not None:
            wait = max(0.0, min(wait, deadline - now))
        return TaskStatus(done=False, poll_after=wait, task=replacement, message="shutting down to resize")
