"""The hypervisor driver interface.

Drivers are pure: they never import Django models. They take and return the
plain dataclasses below and raise ``TransientDriverError`` (the engine retries
with backoff) or ``PermanentDriverError`` (the operation fails at once with the
message, which users see).

Every action is **submit, then poll**: ``create``/``start``/``stop``/``reboot``/
``delete`` submit the work and return a ``DriverTask`` handle at once (a
Proxmox UPID, an OpenStack server id, a libvirt job); the engine stores the
handle on the Operation and calls ``poll(handle)`` from short, separate tasks
until it reports ``done``. A driver never sleeps waiting for the hypervisor.
A multi-step action (clone, then configure, then start) returns the next
step's handle from ``poll`` in ``TaskStatus.task``.

Idempotency contract (the engine relies on it for crash safety):
- ``create`` first looks for a guest carrying ``spec.idempotency_key`` and, if
  one exists, returns a handle for it instead of creating a second guest.
- ``start`` of a running guest, ``stop`` of a stopped guest and ``delete`` of
  a missing guest succeed (``DriverTask(done=True)`` is fine).
- ``poll`` may be called again with the same handle after a crash.
"""

from __future__ import annotations

import abc
import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from . import load_builtin_drivers


class DriverError(Exception):
    """Base class. ``message`` is shown to users; keep it readable."""

    def __init__(self, message: str, *, code: str = "driver_error"):
        super().__init__(message)
        self.message = message
        self.code = code


class TransientDriverError(DriverError):
    """Might work if tried again later: connection lost, timeout, lock held, 5xx."""


class PermanentDriverError(DriverError):
    """Will not work by retrying: bad parameters, missing image, quota exceeded."""


class Capability:
    """Optional abilities a driver declares in ``Driver.capabilities``. The engine, the API
    and the portal ask ``driver_class(kind).supports(...)``; never ``if kind == ...``. The
    contract suite runs each capability against every driver that declares it."""

    CONSOLE = "console"  # console(backend_id) -> ConsoleTarget
    METRICS = "metrics"  # metrics(...) -> list[VMMetrics], one call per hypervisor
    RESIZE = "resize"  # change vCPU / memory / grow disk
    REBUILD = "rebuild"  # replace the disk from an image, keep the guest's identity
    SNAPSHOTS = "snapshots"  # create / list / revert / delete snapshots
    BACKUPS = "backups"  # backup / restore / delete backups

    ALL = (CONSOLE, METRICS, RESIZE, REBUILD, SNAPSHOTS, BACKUPS)


class PowerState:
    RUNNING = "running"  # guest is on
    STOPPED = "stopped"  # guest is off (defined but not running)
    PAUSED = "paused"  # suspended / paused by the hypervisor
    UNKNOWN = "unknown"  # hypervisor could not say

    ALL = (RUNNING, STOPPED, PAUSED, UNKNOWN)


@dataclass(frozen=True)
class HypervisorConfig:
    """What a driver needs to talk to one hypervisor (from the Hypervisor row)."""

    name: str
    kind: str
    settings: dict[str, Any] = field(default_factory=dict)  # non-secret connection settings
    credentials: dict[str, Any] = field(default_factory=dict)  # decrypted secrets

    def cache_key(self) -> tuple:
        return (self.kind, self.name, repr(sorted(self.settings.items())), repr(sorted(self.credentials.items())))


@dataclass(frozen=True)
class VMSpec:
    """Everything needed to create one guest."""

    name: str
    idempotency_key: str  # the create operation's key; put it on the guest (tag/metadata)
    vcpus: int
    memory_mib: int
    disk_gib: int
    image_ref: str  # the image's reference on this hypervisor (template id, image id, volume)
    guest_type: str = "vm"  # "vm" (full virtual machine) or "container" (e.g. Proxmox LXC)
    ssh_public_key: str = ""
    user_data: str = ""  # cloud-init user data
    tenant: dict[str, Any] = field(default_factory=dict)  # per-project ids from tenant provisioning
    extra: dict[str, Any] = field(default_factory=dict)  # plan/image options the driver understands
    # Static addressing from the control plane's IP pools; empty = the hypervisor's own (DHCP, cloud).
    # {"ipv4": {"address", "prefix_length", "gateway"}, "ipv6": {...}, "dns": [...], "network": "vmbr1"}
    network: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HypervisorVM:
    """A guest as the hypervisor reports it."""

    backend_id: str  # stable id on the hypervisor (VMID, server UUID, domain UUID)
    name: str
    power_state: str  # one of PowerState
    idempotency_key: str | None = None  # the key found on the guest, if any
    ip_addresses: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. node, guest type


@dataclass(frozen=True)
class DriverTask:
    """Handle of submitted work. Must be JSON-serialisable (``to_dict``)."""

    ref: str  # the hypervisor's own task reference (UPID, server id, job id); shown to users
    backend_id: str | None = None  # the guest's id, once known
    done: bool = False  # True when the action completed synchronously
    data: dict[str, Any] = field(default_factory=dict)  # driver-private state for poll (step, node...)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> DriverTask:
        return cls(**value)


@dataclass(frozen=True)
class TaskStatus:
    """What ``poll`` found."""

    done: bool
    progress: int | None = None  # 0..100 when the hypervisor reports it
    vm: HypervisorVM | None = None  # the guest after the action, when known (done=True)
    task: DriverTask | None = None  # a replacement handle (next step of a multi-step action)
    poll_after: float | None = None  # the driver's hint: seconds until worth polling again
    message: str = ""  # human-readable step description ("cloning", "starting")
    result: dict[str, Any] = field(default_factory=dict)  # facts for the write-back (a snapshot's size)


@dataclass(frozen=True)
class SnapshotInfo:
    """A snapshot as the hypervisor reports it (``ref``: its name/id there)."""

    ref: str
    size_bytes: int | None = None


@dataclass(frozen=True)
class BackupInfo:
    """A backup in the hypervisor's backup storage (``ref``: its name/volume id there)."""

    ref: str
    size_bytes: int | None = None


@dataclass(frozen=True)
class ResizeSpec:
    """The sizes a guest is resized to (``Capability.RESIZE``); disks only grow."""

    vcpus: int
    memory_mib: int
    disk_gib: int
    plan: str = ""  # the new plan's name (a driver may map plans to its own sizes, e.g. nova flavors)


class ConsoleProtocol:
    VNC = "vnc"  # RFB bytes: a graphical screen (noVNC in the browser)
    SERIAL = "serial"  # a text stream: serial port or container terminal (xterm.js in the browser)

    ALL = (VNC, SERIAL)


@dataclass(frozen=True)
class ConsoleTarget:
    """Where the console proxy connects for one guest's console (``Capability.CONSOLE``).

    One way to reach it: ``host``/``port`` (a raw TCP stream), ``websocket_url`` (the
    hypervisor's own WebSocket, e.g. Proxmox ``vncwebsocket``, opened with ``headers`` and
    TLS ``verify``), or ``browser_url`` (the hypervisor runs its own console proxy, e.g.
    nova's noVNC: the browser is sent there and nothing is relayed). ``password`` (and
    ``username``) are what the proxy answers the console's own login with, server side (a
    VNC password, a Proxmox ticket); they never reach the browser.
    """

    protocol: str  # one of ConsoleProtocol
    host: str = ""
    port: int = 0
    websocket_url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    verify: bool | str = True  # TLS for websocket_url: True, False, or a CA bundle path
    username: str = ""
    password: str = ""
    browser_url: str = ""


@dataclass(frozen=True)
class TenantSpec:
    """Per-project isolation to provision on a hypervisor (OpenStack: project, network...)."""

    project_key: str  # our stable project identifier (slug or id)
    project_name: str
    idempotency_key: str
    quotas: dict[str, int] = field(default_factory=dict)  # instances, cores, ram_mib, disk_gib


@dataclass(frozen=True)
class VMMetrics:
    """One guest's reading at one moment (``Capability.METRICS``). Counters are cumulative
    since the guest (or the hypervisor's counter) started; the collector turns consecutive
    readings into rates and treats a counter that went down as restarted. ``None``: the
    hypervisor did not say (shown as a gap, never as zero)."""

    backend_id: str
    at: float  # unix seconds of the reading
    power_state: str  # one of PowerState
    vcpus: int | None = None
    cpu_time_ns: int | None = None  # counter: CPU time of all vCPUs together
    cpu_fraction: float | None = None  # gauge 0..1 of all vCPUs, when the hypervisor reports a rate itself
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    disk_read_bytes: int | None = None  # counters from here on
    disk_write_bytes: int | None = None
    disk_read_ops: int | None = None
    disk_write_ops: int | None = None
    net_rx_bytes: int | None = None  # received by the guest
    net_tx_bytes: int | None = None  # sent by the guest
    uptime_seconds: float | None = None  # smaller than last time: the guest restarted (counters reset)


class Driver(abc.ABC):
    """One hypervisor. Instances are cached per process (see ``get_driver``)."""

    kind: ClassVar[str]
    supports_tenants: ClassVar[bool] = False
    capabilities: ClassVar[frozenset[str]] = frozenset()  # values of ``Capability``
    # What a resize changes without restarting the guest ("vcpus", "memory", "disk"); any other
    # change means the driver stops the guest, resizes and starts it again (users are told first).
    resize_live: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def supports(cls, capability: str) -> bool:
        return capability in cls.capabilities

    def __init__(self, config: HypervisorConfig):
        self.config = config

    # -- connection ---------------------------------------------------------
    @abc.abstractmethod
    def check(self) -> dict[str, Any]:
        """Test the connection; return facts to show an operator (version, nodes)."""

    # -- actions (submit; never block on the hypervisor) --------------------
    @abc.abstractmethod
    def create(self, spec: VMSpec) -> DriverTask: ...

    @abc.abstractmethod
    def start(self, backend_id: str) -> DriverTask: ...

    @abc.abstractmethod
    def stop(self, backend_id: str, *, force: bool = False, hard_stop_after: int | None = None) -> DriverTask:
        """Graceful shutdown. After ``hard_stop_after`` seconds (the plan's setting; None: the
        hypervisor's default) the guest is powered off; 0 never forces. ``force`` powers off at once."""

    @abc.abstractmethod
    def reboot(self, backend_id: str) -> DriverTask: ...

    @abc.abstractmethod
    def delete(self, backend_id: str) -> DriverTask: ...

    @abc.abstractmethod
    def poll(self, task: DriverTask) -> TaskStatus:
        """Report on submitted work. Raise ``PermanentDriverError`` with the
        hypervisor's own message when it ended in failure."""

    # -- reads ---------------------------------------------------------------
    @abc.abstractmethod
    def get(self, backend_id: str) -> HypervisorVM | None:
        """One guest, or ``None`` only when the hypervisor confirms it does not exist.
        Any doubt (API error) raises instead: an error never means "gone"."""

    @abc.abstractmethod
    def find_by_key(self, idempotency_key: str) -> HypervisorVM | None:
        """The guest carrying this idempotency key, if any."""

    @abc.abstractmethod
    def list_all(self) -> list[HypervisorVM]:
        """Every guest this hypervisor manages, in one call (for reconciliation)."""

    # -- tenants (optional) ---------------------------------------------------
    def provision_tenant(self, tenant: TenantSpec) -> DriverTask:
        raise PermanentDriverError(f"{self.kind} hypervisors have no tenant provisioning.")

    # -- capabilities (optional): each method belongs to a ``Capability`` the driver declares --
    def console(self, backend_id: str, *, protocol: str = ConsoleProtocol.VNC) -> ConsoleTarget:
        """``Capability.CONSOLE``: where to reach the guest's console. Raise
        ``PermanentDriverError`` when the guest has none (off, or no such protocol)."""
        raise PermanentDriverError(f"{self.kind} hypervisors offer no console.", code="no_console")

    def metrics(self) -> list[VMMetrics]:
        """``Capability.METRICS``: a reading of every guest that is on, in one round trip to
        the hypervisor where its API allows. Raises like any read (an error is a gap)."""
        raise PermanentDriverError(f"{self.kind} hypervisors do not report metrics.", code="unsupported")

    # Each is submit-then-poll like the actions above and idempotent on the hypervisor: a
    # snapshot_create of a ``ref`` that exists, a snapshot_delete of one that does not, a resize
    # to the sizes the guest has, all succeed; poll may be called again after a crash.

    def _unsupported(self, capability: str):
        return PermanentDriverError(f"{self.kind} hypervisors do not support {capability}.", code="unsupported")

    def snapshot_create(self, backend_id: str, *, ref: str) -> DriverTask:
        raise self._unsupported(Capability.SNAPSHOTS)

    def snapshot_revert(self, backend_id: str, *, ref: str) -> DriverTask:
        """Roll the guest back to ``ref``; its power state afterwards is what it was before."""
        raise self._unsupported(Capability.SNAPSHOTS)

    def snapshot_delete(self, backend_id: str, *, ref: str) -> DriverTask:
        raise self._unsupported(Capability.SNAPSHOTS)

    def snapshot_list(self, backend_id: str) -> list[SnapshotInfo]:
        """Every snapshot of the guest (for reconciliation)."""
        raise self._unsupported(Capability.SNAPSHOTS)

    def resize(self, backend_id: str, *, spec: ResizeSpec) -> DriverTask:
        """Apply ``spec``; a smaller disk is a ``PermanentDriverError``. A change outside
        ``resize_live`` stops the guest first and starts it again if it was running."""
        raise self._unsupported(Capability.RESIZE)

    def rebuild(self, backend_id: str, *, spec: VMSpec) -> DriverTask:
        """Replace the guest's disk from ``spec.image_ref`` (new key/user data), keeping its id
        and addresses. ``spec.idempotency_key`` is the rebuild operation's: a retry after a crash
        finishes the same rebuild, never leaves two disks or none."""
        raise self._unsupported(Capability.REBUILD)

    # Backups (``Capability.BACKUPS``): a copy of the guest's disk kept apart from it, named by
    # ``ref`` (the control plane's name). Same idempotency as snapshots: creating a ``ref`` that
    # exists and deleting one that does not both succeed; a restore keeps the guest's power state.
    def backup_create(self, backend_id: str, *, ref: str) -> DriverTask:
        raise self._unsupported(Capability.BACKUPS)

    def backup_restore(self, backend_id: str, *, ref: str) -> DriverTask:
        raise self._unsupported(Capability.BACKUPS)

    def backup_delete(self, backend_id: str, *, ref: str) -> DriverTask:
        raise self._unsupported(Capability.BACKUPS)

    def backup_list(self, backend_id: str) -> list[BackupInfo]:
        """Every backup of the guest in backup storage (for reconciliation)."""
        raise self._unsupported(Capability.BACKUPS)

    def close(self) -> None:
        """Release connections (called when the cached driver is replaced)."""
        return None


_REGISTRY: dict[str, type[Driver]] = {}
_CACHE: dict[tuple, Driver] = {}
_CACHE_LOCK = threading.Lock()


def register(kind: str) -> Callable[[type[Driver]], type[Driver]]:
    """Class decorator: ``@register("proxmox")``."""

    def decorator(cls: type[Driver]) -> type[Driver]:
        cls.kind = kind
        _REGISTRY[kind] = cls
        return cls

    return decorator


def driver_class(kind: str) -> type[Driver]:
    load_builtin_drivers()
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise PermanentDriverError(f"No driver for hypervisor kind {kind!r}.", code="no_driver") from None


def registered_drivers() -> dict[str, type[Driver]]:
    """Every driver class whose client library is installed, by kind."""
    load_builtin_drivers()
    return dict(_REGISTRY)


def get_driver(config: HypervisorConfig) -> Driver:
    """The process-wide driver instance for this hypervisor configuration.

    One instance (and so one connection) per worker process per hypervisor;
    a changed configuration (rotated credentials) makes a new one.
    """
    key = config.cache_key()
    with _CACHE_LOCK:
        driver = _CACHE.get(key)
        if driver is None:
            for old_key in [k for k in _CACHE if k[:2] == key[:2]]:
                _CACHE.pop(old_key).close()
            driver = _CACHE[key] = driver_class(config.kind)(config)
        return driver


def clear_driver_cache() -> None:
    with _CACHE_LOCK:
        for driver in _CACHE.values():
            driver.close()
        _CACHE.clear()
