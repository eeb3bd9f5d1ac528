"""The libvirt / KVM driver: QEMU domains on one libvirt host, through libvirt-python.

How the engine's contract maps onto libvirt:

- ``create`` looks for a domain whose ``<metadata>`` carries the idempotency key;
  if none, it makes the disk (a qcow2 overlay of the image's base volume, or a
  full copy), the cloud-init seed when wanted, and defines the domain. The
  returned handle's next step (in ``poll``) starts it. Domain, disk and seed
  names derive from the VM name and the key, so a create interrupted before
  the define is redone cleanly.
- ``start`` / ``delete`` and a forced ``stop`` finish inside the call (libvirt
  returns once the domain runs, ~0.4 s, or is gone) and return a done handle.
- A graceful ``stop`` sends an ACPI shutdown and returns; each ``poll`` re-sends
  it every ``shutdown_retry_seconds`` (a press while the guest is still booting
  is silently lost) until the guest is off, or powers it off once the plan's
  hard-stop time has passed (``hard_stop_after``, else the value the create
  recorded in the domain's metadata, else the ``shutdown_timeout`` setting).
- ``reboot`` is a graceful stop then a start (as Nova's soft reboot); a new
  domain id tells a repeated poll that the restart already happened.
- ``list_all`` is one ``getAllDomainStats(STATE)`` call; idempotency keys are
  read from each domain's metadata once per process and cached (they never change).
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from typing import Any

import libvirt

from ..base import (
    Capability,
    ConsoleProtocol,
    ConsoleTarget,
    Driver,
    DriverError,
    DriverTask,
    HypervisorVM,
    PermanentDriverError,
    PowerState,
    TaskStatus,
    VMMetrics,
    VMSpec,
    register,
)
from ..loopback import SERVERS
from . import metrics, serial
from .backups import BACKUP_STEP, LibvirtBackups
from .client import LibvirtClient, code_of
from .console import connect_host, vnc_endpoint
from .domain import NS_URI, Instance, domain_name, domain_xml, wants_seed
from .options import ImageRef, LibvirtSettings
from .rebuild import LibvirtRebuild
from .resize import LibvirtResize
from .seed import build_iso, nocloud_files
from .snapshots import LibvirtSnapshots
from .storage import GIB, Storage

logger = logging.getLogger(__name__)

POWER = {
    libvirt.VIR_DOMAIN_NOSTATE: PowerState.UNKNOWN,
    libvirt.VIR_DOMAIN_RUNNING: PowerState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: PowerState.RUNNING,
    libvirt.VIR_DOMAIN_SHUTDOWN: PowerState.RUNNING,  # shutting down: still on
    libvirt.VIR_DOMAIN_PAUSED: PowerState.PAUSED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: PowerState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTOFF: PowerState.STOPPED,
    libvirt.VIR_DOMAIN_CRASHED: PowerState.STOPPED,
}
OFF_STATES = (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_CRASHED)
UNDEFINE_FLAGS = (
    libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
    | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
)


def _version(number: int) -> str:
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


@register("libvirt")
class LibvirtDriver(LibvirtSnapshots, LibvirtBackups, LibvirtResize, LibvirtRebuild, Driver):
    # internal qcow2 snapshots: snapshots.py; resize.py; rebuild.py
    # backups (disk copies in a backup pool, backupBegin for a running guest): backups.py
    capabilities = frozenset(
        {
            Capability.CONSOLE,
            Capability.METRICS,
            Capability.SNAPSHOTS,
            Capability.BACKUPS,
            Capability.RESIZE,
            Capability.REBUILD,
        }
    )
    resize_live = frozenset({"disk"})  # vCPU / memory: shut down, redefine, start (resize.py)

    def __init__(self, config):
        super().__init__(config)
        self.settings = LibvirtSettings.from_config(config.settings)
        self.client = LibvirtClient(self.settings.uri, config.credentials, label=config.name)
        self.storage = Storage(self.client, self.settings, config.name)
        self._instances: dict[str, Instance | None] = {}  # domain UUID -> our metadata (None: not ours)

    # -- plumbing --------------------------------------------------------------------
    def _conn(self) -> libvirt.virConnect:
        return self.client.connection()

    def _lookup(self, backend_id: str) -> libvirt.virDomain | None:
        """The domain, or None only when libvirt says there is no such domain."""
        try:
            uuid.UUID(backend_id)
        except (TypeError, ValueError):
            return None  # not a domain UUID: no domain can have it
        conn = self._conn()
        with self.client.errors(f"look up domain {backend_id}"):
            try:
                return conn.lookupByUUIDString(backend_id)
            except libvirt.libvirtError as exc:
                if code_of(exc) != libvirt.VIR_ERR_NO_DOMAIN:
                    raise
        self._instances.pop(backend_id, None)
        return None

    def _require(self, backend_id: str) -> libvirt.virDomain:
        dom = self._lookup(backend_id)
        if dom is None:
            raise PermanentDriverError(f"Domain {backend_id} does not exist on {self.config.name}.", code="not_found")
        return dom

    def _state(self, dom: libvirt.virDomain) -> int:
        with self.client.errors(f"read the state of {dom.name()}"):
            return dom.state()[0]

    def _instance(self, dom: libvirt.virDomain) -> Instance | None:
        backend_id = dom.UUIDString()
        if backend_id in self._instances:
            return self._instances[backend_id]
        with self.client.errors(f"read the metadata of {dom.name()}"):
            try:
                xml = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NS_URI, 0)
            except libvirt.libvirtError as exc:
                if code_of(exc) == libvirt.VIR_ERR_NO_DOMAIN:
                    return None  # gone meanwhile; do not remember
                if code_of(exc) != libvirt.VIR_ERR_NO_DOMAIN_METADATA:
                    raise
                xml = None
        instance = Instance.from_xml(xml) if xml else None
        self._instances[backend_id] = instance
        return instance

    def _addresses(self, dom: libvirt.virDomain) -> tuple[str, ...]:
        if self.settings.network:
            source = libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE
        elif self.settings.bridge:
            source = libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP
        else:
            return ()
        try:
            interfaces = dom.interfaceAddresses(source, 0) or {}
        except libvirt.libvirtError as exc:
            logger.debug("no addresses for %s: %s", dom.name(), exc)
            return ()
        return tuple(
            address["addr"]
            for interface in interfaces.values()
            for address in (interface.get("addrs") or [])
            if address.get("addr")
        )

    def _vm(self, dom: libvirt.virDomain, *, state: int | None = None, addresses: bool = False) -> HypervisorVM:
        state = self._state(dom) if state is None else state
        power = POWER.get(state, PowerState.UNKNOWN)
        instance = self._instance(dom)
        return HypervisorVM(
            backend_id=dom.UUIDString(),
            name=dom.name(),
            power_state=power,
            idempotency_key=instance.idempotency_key if instance else None,
            ip_addresses=self._addresses(dom) if addresses and power == PowerState.RUNNING else (),
            extra={"libvirt_state": state},
        )

    # -- power ---------------------------------------------------------------------------
    def _power_on(self, dom: libvirt.virDomain) -> None:
        state = self._state(dom)
        with self.client.errors(f"start {dom.name()}"):
            try:
                if state in (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PMSUSPENDED):
                    dom.resume()
                elif POWER.get(state) != PowerState.RUNNING:
                    dom.create()
            except libvirt.libvirtError as exc:
                # "domain is already running": someone else started it meanwhile
                if code_of(exc) != libvirt.VIR_ERR_OPERATION_INVALID or self._state(dom) in OFF_STATES:
                    raise

    def _destroy(self, dom: libvirt.virDomain) -> None:
        with self.client.errors(f"power off {dom.name()}"):
            try:
                dom.destroy()
            except libvirt.libvirtError as exc:
                if code_of(exc) != libvirt.VIR_ERR_OPERATION_INVALID:  # "domain is not running"
                    raise

    def _send_shutdown(self, dom: libvirt.virDomain) -> None:
        with self.client.errors(f"shut down {dom.name()}"):
            try:
                dom.shutdown()
            except libvirt.libvirtError as exc:
                if code_of(exc) != libvirt.VIR_ERR_OPERATION_INVALID:  # went off meanwhile
                    raise

    def _shutdown_task(
        self, action: str, dom: libvirt.virDomain, *, then_start: bool, hard_stop: int | None = None
    ) -> DriverTask:
        if hard_stop is None:  # the plan's value recorded at create, else the hypervisor's default
            instance = self._instance(dom)
            hard_stop = self.settings.shutdown_timeout
            if instance and instance.hard_stop_after is not None:
                hard_stop = instance.hard_stop_after
        domain_id = dom.ID()  # a restart gives the domain a new id
        self._send_shutdown(dom)
        now = time.time()
        backend_id = dom.UUIDString()
        return DriverTask(
            ref=f"{action}/{backend_id}",
            backend_id=backend_id,
            data={
                "action": action,
                "step": "shutdown",
                "started_at": now,
                "sent_at": now,
                "deadline": now + hard_stop if hard_stop > 0 else None,
                "then_start": then_start,
                "domain_id": domain_id,
            },
        )

    # -- interface: actions -------------------------------------------------------------------
    def check(self) -> dict[str, Any]:
        conn = self._conn()
        pool = self.storage.pool(conn)
        with self.client.errors("read host facts"):
            capacity, allocation, available = pool.info()[1:4]
            return {
                "uri": self.settings.uri,
                "hostname": conn.getHostname(),
                "hypervisor": f"{conn.getType()} {_version(conn.getVersion())}",
                "libvirt": _version(conn.getLibVersion()),
                "pool": self.settings.pool,
                "pool_available_gib": round(available / GIB, 1),
                "domains": len(conn.listAllDomains(0)),
            }

    def create(self, spec: VMSpec) -> DriverTask:
        existing = self.find_by_key(spec.idempotency_key)
        if existing is not None:
            return self._create_task(existing.backend_id)
        image = ImageRef.parse(spec.image_ref)
        conn = self._conn()
        name = domain_name(spec)
        with self.client.errors(f"check domain name {name}"):
            try:
                conn.lookupByName(name)
                taken = True
            except libvirt.libvirtError as exc:
                if code_of(exc) != libvirt.VIR_ERR_NO_DOMAIN:
                    raise
                taken = False
        if taken:  # a domain of that name without our key: never touch its volumes
            raise PermanentDriverError(f"Domain {name} already exists on {self.config.name}.", code="name_taken")
        pool = self.storage.pool(conn)
        base = self.storage.image_volume(pool, image.volume)
        hard_stop = int(spec.extra.get("hard_stop_after_seconds", self.settings.shutdown_timeout))
        disk = f"{name}-disk.qcow2"
        seed = f"{name}-seed.iso" if wants_seed(spec, image, self.settings) else None
        created: list[str] = []
        try:
            for leftover in (disk, seed):  # from a create interrupted before its define
                if leftover:
                    self.storage.delete_volume(pool, leftover)
            self.storage.make_disk(pool, base, disk, spec.disk_gib)
            created.append(disk)
            if seed:
                files = nocloud_files(
                    instance_id=spec.idempotency_key,
                    hostname=spec.name,
                    ssh_public_key=spec.ssh_public_key,
                    user_data=spec.user_data,
                    network=spec.network,
                )
                self.storage.upload_volume(conn, pool, seed, build_iso(files))
                created.append(seed)
            xml = domain_xml(
                spec,
                image,
                self.settings,
                name=name,
                disk=disk,
                seed=seed,
                hard_stop=hard_stop,
                kernel=self.storage.boot_file(pool, image.kernel) if image.kernel else "",
                initrd=self.storage.boot_file(pool, image.initrd) if image.initrd else "",
            )
            with self.client.errors(f"define domain {name}"):
                dom = conn.defineXML(xml)
        except Exception:  # a refused define, and anything unexpected: never leave the volumes behind
            for volume in created:
                try:
                    self.storage.delete_volume(pool, volume)
                except DriverError:
                    logger.warning("could not remove volume %s after a failed create", volume, exc_info=True)
            raise
        backend_id = dom.UUIDString()
        self._instances[backend_id] = Instance(spec.idempotency_key, hard_stop, tuple(created))
        return self._create_task(backend_id)

    @staticmethod
    def _create_task(backend_id: str) -> DriverTask:
        return DriverTask(ref=f"create/{backend_id}", backend_id=backend_id, data={"action": "create", "step": "start"})

    def start(self, backend_id: str) -> DriverTask:
        dom = self._require(backend_id)
        self._power_on(dom)
        return DriverTask(ref=f"start/{backend_id}", backend_id=backend_id, done=True, data={"action": "start"})

    def stop(self, backend_id: str, *, force: bool = False, hard_stop_after: int | None = None) -> DriverTask:
        dom = self._require(backend_id)
        if self._state(dom) in OFF_STATES:
            return DriverTask(ref=f"stop/{backend_id}", backend_id=backend_id, done=True, data={"action": "stop"})
        if force:
            self._destroy(dom)
            return DriverTask(ref=f"stop/{backend_id}", backend_id=backend_id, done=True, data={"action": "stop"})
        return self._shutdown_task("stop", dom, then_start=False, hard_stop=hard_stop_after)

    def reboot(self, backend_id: str) -> DriverTask:
        dom = self._require(backend_id)
        if POWER.get(self._state(dom)) != PowerState.RUNNING:
            raise PermanentDriverError("Cannot reboot a guest that is not running.", code="not_running")
        return self._shutdown_task("reboot", dom, then_start=True)

    def delete(self, backend_id: str) -> DriverTask:
        """Power off, remove the volumes we created (never the base image), undefine."""
        task = DriverTask(ref=f"delete/{backend_id}", backend_id=backend_id, done=True, data={"action": "delete"})
        dom = self._lookup(backend_id)
        if dom is None:
            return task
        instance = self._instance(dom)
        self._destroy(dom)
        if instance and instance.volumes:
            pool = self.storage.pool(self._conn())
            for volume in instance.volumes:
                self.storage.delete_volume(pool, volume)
        with self.client.errors(f"undefine {dom.name()}"):
            try:
                dom.undefineFlags(UNDEFINE_FLAGS)
            except libvirt.libvirtError as exc:
                if code_of(exc) == libvirt.VIR_ERR_NO_DOMAIN:
                    pass
                elif code_of(exc) in (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT):
                    dom.undefineFlags(0)  # drivers without NVRAM/snapshot flags (the test driver)
                else:
                    raise
        self._instances.pop(backend_id, None)
        return task

    def poll(self, task: DriverTask) -> TaskStatus:
        if task.done:
            return TaskStatus(done=True, progress=100, vm=self.get(task.backend_id) if task.backend_id else None)
        step = task.data.get("step")
        if step == "start":
            dom = self._require(task.backend_id)
            self._power_on(dom)
            return TaskStatus(done=True, progress=100, vm=self._vm(dom, addresses=True), message="started")
        if step == "shutdown":
            return self._poll_shutdown(task)
        if step == BACKUP_STEP:
            return self._poll_backup(task)
        if step == "resize":
            return self._poll_resize(task)
        raise PermanentDriverError(f"Unknown libvirt task {task.ref} (step {step!r}).", code="unknown_task")

    def _poll_shutdown(self, task: DriverTask) -> TaskStatus:
        data = task.data
        dom = self._require(task.backend_id)
        state = self._state(dom)
        now = time.time()
        if data.get("then_start") and state not in OFF_STATES and dom.ID() != data.get("domain_id"):
            return TaskStatus(done=True, progress=100, vm=self._vm(dom, addresses=True), message="restarted")
        forced = False
        if state not in OFF_STATES:
            deadline = data.get("deadline")
            if deadline is None or now < deadline:
                replacement = None
                if now - data["sent_at"] >= self.settings.shutdown_retry_seconds:
                    self._send_shutdown(dom)  # the last press may have come before the guest listened
                    replacement = dataclasses.replace(task, data={**data, "sent_at": now})
                wait = self.settings.shutdown_retry_seconds
                progress = None
                if deadline is not None:
                    wait = max(0.0, min(wait, deadline - now))
                    total = max(deadline - data["started_at"], 1e-6)
                    progress = int(min(99, (now - data["started_at"]) / total * 100))
                return TaskStatus(
                    done=False,
                    progress=progress,
                    poll_after=wait,
                    task=replacement,
                    message="waiting for the guest to shut down",
                )
            self._destroy(dom)
            forced = True
        if data.get("then_start"):
            self._power_on(dom)
        waited = round(now - data["started_at"], 1)
        message = f"powered off after {waited}s without a clean shutdown" if forced else f"shut down in {waited}s"
        return TaskStatus(done=True, progress=100, vm=self._vm(dom, addresses=True), message=message)

    # -- interface: reads ---------------------------------------------------------------------
    def get(self, backend_id: str) -> HypervisorVM | None:
        dom = self._lookup(backend_id)
        return None if dom is None else self._vm(dom, addresses=True)

    def find_by_key(self, idempotency_key: str) -> HypervisorVM | None:
        conn = self._conn()
        with self.client.errors("list domains"):
            domains = conn.listAllDomains(0)
        for dom in domains:
            instance = self._instance(dom)
            if instance and instance.idempotency_key == idempotency_key:
                try:
                    return self._vm(dom, addresses=True)
                except PermanentDriverError as exc:
                    if exc.code != "not_found":
                        raise
        return None

    def list_all(self) -> list[HypervisorVM]:
        conn = self._conn()
        with self.client.errors("list domains"):
            stats = conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE, 0)
        return [self._vm(dom, state=values.get("state.state", libvirt.VIR_DOMAIN_NOSTATE)) for dom, values in stats]

    def console(self, backend_id: str, *, protocol: str = ConsoleProtocol.VNC) -> ConsoleTarget:
        """The domain's VNC screen (``vnc_listen``, port from its live XML), or its serial
        console through a loopback port in this process (libvirt/serial.py)."""
        dom = self._require(backend_id)
        if self._state(dom) in OFF_STATES:
            raise PermanentDriverError(f"{dom.name()} is not running: start it to use its console.", code="off")
        with self.client.errors(f"read the consoles of {dom.name()}"):
            xml = dom.XMLDesc(0)
        if protocol == ConsoleProtocol.SERIAL:
            serial.require_pty_console(xml)
            key = ("libvirt", id(self), backend_id)  # a replaced driver (new settings) gets new ports
            port = SERVERS.port_for(key, lambda sock: serial.serve(sock, self._conn, backend_id))
            return ConsoleTarget(protocol=protocol, host=SERVERS.host, port=port)
        listen, port = vnc_endpoint(xml)
        return ConsoleTarget(protocol=protocol, host=connect_host(self.settings, listen), port=port)

    def metrics(self) -> list[VMMetrics]:
        """One ``getAllDomainStats`` call for every domain on the host."""
        conn = self._conn()
        with self.client.errors("read domain statistics"):
            stats = conn.getAllDomainStats(metrics.STATS, 0)
            at = time.time()
            return [
                metrics.reading(
                    dom.UUIDString(),
                    POWER.get(values.get("state.state", libvirt.VIR_DOMAIN_NOSTATE), PowerState.UNKNOWN),
                    values,
                    at=at,
                )
                for dom, values in stats
            ]

    def close(self) -> None:
        self.client.close()
