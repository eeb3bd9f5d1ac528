"""The Proxmox VE driver: QEMU VMs and LXC containers, submit then poll.

``backend_id`` is the guest's VMID (cluster-wide and stable across
migrations); where the guest lives is looked up with one
``cluster/resources?type=vm`` call, which is also the reconciliation listing.

Every action is a small plan of steps kept in the handle (``DriverTask.data``,
JSON): each step submits one Proxmox call and, when that returns a UPID, the
handle's ``ref`` is the UPID and ``poll`` reads ``nodes/{node}/tasks/{upid}/status``.
When a task ends OK, ``poll`` submits the next step and returns the new handle
in ``TaskStatus.task``; synchronous steps (LXC config) run on in the same poll.

- create: [clone | ctcreate] → configure → resize → start. The clone carries
  the idempotency key in its description; ``configure`` adds the ``cp-<key>``
  tag that lookups use. A VMID taken between ``cluster/nextid`` and the clone
  is retried with a new id.
- stop: shutdown (timeout = hard_stop_after) → if it timed out, stop (power
  off); with hard_stop_after 0 a timed-out shutdown fails instead.
- reboot: reboot → if a QEMU guest ignored it, stop → start.
- delete: stop (if running) → destroy (purge, unreferenced disks).
- HA-managed guests: a start/stop/shutdown answers with an ``hastart``/``hastop``
  task that only queues the request; the step then waits in ``cluster/resources``
  until the guest is really running/stopped (ha.py).

A task that ends with a transient error (config lock timeout, lost quorum)
is resubmitted after a backoff, up to ``STEP_RETRIES`` times, without the
driver ever sleeping; any other task error fails with Proxmox's own message.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

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
    TransientDriverError,
    VMMetrics,
    VMSpec,
    register,
)
from . import guests, ha, metrics, steps
from .backups import ProxmoxBackups
from .client import Code, ProxmoxClient, classify
from .console import console_target
from .guests import Guest
from .resize import ProxmoxResize
from .settings import ProxmoxSettings
from .snapshots import ProxmoxSnapshots

logger = logging.getLogger(__name__)

STEP_RETRIES = 5
VMID_ATTEMPTS = 5
KINDS = {"vm": "qemu", "container": "lxc"}
STEP_MESSAGES = {
    "clone": "cloning the template",
    "ctcreate": "creating the container",
    "adopt": "waiting for the guest being built",
    "configure": "configuring",
    "resize": "growing the disk",
    "start": "starting",
    "shutdown": "shutting down",
    "stop": "powering off",
    "reboot": "rebooting",
    "destroy": "deleting",
    ha.WAIT_STEP: "waiting for Proxmox HA",
    "snapshot": "taking the snapshot",
    "rollback": "rolling back to the snapshot",
    "delsnapshot": "deleting the snapshot",
    "vzdump": "backing up (vzdump)",
    "restore": "restoring the backup",
    "delbackup": "deleting the backup",
    "resize_config": "setting vCPU and memory",
}


@register("proxmox")
class ProxmoxDriver(ProxmoxSnapshots, ProxmoxBackups, ProxmoxResize, Driver):
    """Settings: see ``ProxmoxSettings`` and ``ProxmoxClient``. Credentials: token_id
    (user@realm!tokenid) + token_secret, or user + password."""

    # PVE's snapshot API: snapshots.py; resize and rebuild: resize.py
    # vzdump backups and restores: backups.py
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
    resize_live = frozenset({"disk"})  # QEMU cores/memory: reboot to apply (containers take them live)

    def __init__(self, config):
        super().__init__(config)
        self.client = ProxmoxClient(config.settings, config.credentials, name=config.name)
        self.settings = ProxmoxSettings.from_config(config.name, config.settings)

    # -- reads -------------------------------------------------------------------
    def _resources(self) -> list[Guest]:
        return [Guest.from_resource(item) for item in self.client.get("cluster/resources", type="vm") or []]

    def _locate(self, backend_id: str, resources: list[Guest] | None = None) -> Guest | None:
        vmid = self._vmid(backend_id)
        for guest in self._resources() if resources is None else resources:
            if guest.vmid == vmid:
                return guest
        return None

    @staticmethod
    def _vmid(backend_id: str) -> int:
        try:
            return int(backend_id)
        except (TypeError, ValueError):
            raise PermanentDriverError(f"{backend_id!r} is not a Proxmox VMID.", code=Code.INVALID) from None

    def _addresses(self, guest: Guest) -> tuple[str, ...]:
        """Best effort: static addresses from the config, else what the guest reports."""
        if guest.power_state != PowerState.RUNNING:
            return ()
        try:
            config = self.client.get(guest.path("config")) or {}
            static = guests.static_addresses(config.get("ipconfig0" if guest.kind == "qemu" else "net0"))
            if static:
                return static
            if guest.kind == "lxc":
                return guests.lxc_addresses(self.client.get(guest.path("interfaces")))
            if str(config.get("agent", "0")).split(",")[0] in ("1", "enabled=1"):
                return guests.agent_addresses(self.client.get(guest.path("agent/network-get-interfaces")))
        except DriverError as exc:
            logger.debug("no addresses for %s: %s", guest.vmid, exc.message)
        return ()

    def _observe(self, backend_id: str) -> HypervisorVM | None:
        guest = self._locate(backend_id)
        return guest.vm(self._addresses(guest)) if guest else None

    def get(self, backend_id: str) -> HypervisorVM | None:
        found = self._observe(backend_id)
        if found is not None:
            return found
        # Not listed: confirm with Proxmox that the id is free, not just invisible to this token.
        try:
            self.client.get("cluster/nextid", vmid=self._vmid(backend_id))
        except PermanentDriverError as exc:
            if exc.code == Code.VMID_TAKEN:
                raise PermanentDriverError(
                    f"Guest {backend_id} exists but this API token cannot see it (grant VM.Audit).",
                    code=Code.FORBIDDEN,
                ) from exc
            raise
        return None

    def find_by_key(self, idempotency_key: str) -> HypervisorVM | None:
        guest = self._find(self._resources(), idempotency_key, name=None)
        return guest.vm() if guest else None

    def _find(self, resources: list[Guest], key: str, *, name: str | None) -> Guest | None:
        """The guest tagged with the key; else an untagged one whose description carries it (cloned,
        not yet configured): those still being built, or named ``name``."""
        for guest in resources:
            if guest.key == key:
                return guest
        for guest in resources:
            if guest.key or guest.template or not (guest.lock in guests.BUILD_LOCKS or guest.name == name):
                continue
            try:
                description = (self.client.get(guest.path("config")) or {}).get("description") or ""
            except PermanentDriverError as exc:
                if exc.code == Code.NOT_FOUND:
                    continue
                raise
            if guests.marker(key) in description:
                return guest
        return None

    def list_all(self) -> list[HypervisorVM]:
        return [guest.vm() for guest in self._resources() if not guest.template]

    def metrics(self) -> list[VMMetrics]:
        """One ``cluster/resources`` call for the whole cluster."""
        return metrics.readings(self.client.get("cluster/resources", type="vm") or [], at=time.time())

    def check(self) -> dict[str, Any]:
        version = self.client.get("version") or {}
        nodes = [
            {
                "name": item.get("node"),
                "status": item.get("status"),
                "free_memory_mib": int(item.get("maxmem", 0) - item.get("mem", 0)) // 2**20,
            }
            for item in self.client.get("nodes") or []
        ]
        facts = {
            "version": version.get("version"),
            "release": version.get("release"),
            "nodes": nodes,
            "node_setting": self.settings.node,
            "tls_verified": self.client.tls_verified,
        }
        if self.settings.node != "auto" and self.settings.node not in {n["name"] for n in nodes}:
            facts["warning"] = f"settings.node {self.settings.node!r} is not a node of this cluster."
        return facts

    # -- create --------------------------------------------------------------------
    def create(self, spec: VMSpec) -> DriverTask:
        kind = KINDS.get(spec.guest_type)
        if kind is None:
            raise PermanentDriverError(f"Unknown guest type {spec.guest_type!r}.", code=Code.INVALID)
        resources = self._resources()
        existing = self._find(resources, spec.idempotency_key, name=spec.name)
        if existing is not None:
            return self._adopt(existing, spec)
        if spec.user_data:
            raise PermanentDriverError(
                "Proxmox cannot take cloud-init user data through its API; leave user data empty "
                "(the SSH key and the IP configuration are applied).",
                code=Code.INVALID,
            )
        data = self._create_data(spec, kind, resources)
        data["total"] = len(data["steps"])
        for _ in range(VMID_ATTEMPTS):
            data["vmid"] = int(self.client.get("cluster/nextid"))
            try:
                ref = self._submit(data)
            except PermanentDriverError as exc:
                if exc.code != Code.VMID_TAKEN:
                    raise
                logger.info("VMID %s was taken before our %s; trying another", data["vmid"], data["steps"][0])
                continue
            return DriverTask(ref=ref, backend_id=str(data["vmid"]), data=data)
        raise TransientDriverError(f"Could not get a free VMID after {VMID_ATTEMPTS} tries.", code=Code.VMID_TAKEN)

    def _create_data(self, spec: VMSpec, kind: str, resources: list[Guest]) -> dict[str, Any]:
        ref = spec.image_ref.strip()
        data: dict[str, Any] = {
            "action": "create",
            "kind": kind,
            "node": self._choose_node(),
            "spec": self._spec_data(spec),
        }
        if kind == "lxc" and not ref.isdigit():
            if ":" not in ref:
                raise PermanentDriverError(
                    f"Image reference {ref!r} is neither a template VMID nor an OS template volume "
                    "(storage:vztmpl/...).",
                    code=Code.INVALID,
                )
            data["spec"]["ostemplate"] = ref
            data["steps"] = ["ctcreate", "start"]
            return data
        template = self._locate(ref, resources) if ref.isdigit() else None
        if template is None:
            raise PermanentDriverError(f"Template {ref!r} does not exist on {self.config.name}.", code=Code.NOT_FOUND)
        if not template.template:
            raise PermanentDriverError(
                f"Image {ref} on {self.config.name} is the guest {template.name!r}, not a template: convert it "
                f"(qm template {ref} / pct template {ref}) or point the image at a template's VMID.",
                code=Code.INVALID,
            )
        if template.kind != kind:
            raise PermanentDriverError(
                f"Template {ref} is a {template.kind} guest but the plan wants a {spec.guest_type}.", code=Code.INVALID
            )
        if kind == "lxc" and spec.ssh_public_key.strip():
            raise PermanentDriverError(
                "Proxmox cannot put an SSH key into a container cloned from a template; use an image whose "
                "reference is an OS template (storage:vztmpl/...), or bake the key into the template.",
                code=Code.INVALID,
            )
        data["spec"].update(template=template.vmid, template_node=template.node)
        data["steps"] = ["clone", "configure", "resize", "start"]
        return data

    @staticmethod
    def _spec_data(spec: VMSpec) -> dict[str, Any]:
        return {
            "name": spec.name,
            "key": spec.idempotency_key,
            "vcpus": spec.vcpus,
            "memory_mib": spec.memory_mib,
            "disk_gib": spec.disk_gib,
            "ssh_public_key": spec.ssh_public_key.strip(),
            # static addressing from the control plane's IP pool (else the hypervisor's ipconfig setting)
            "ipconfig": guests.static_ipconfig(spec.network),
            "nameserver": " ".join(spec.network.get("dns", [])),
            "bridge": spec.network.get("network", ""),
        }

    def _choose_node(self) -> str:
        if self.settings.node != "auto":
            return self.settings.node
        online = [item for item in self.client.get("nodes") or [] if item.get("status") == "online"]
        if not online:
            raise TransientDriverError(f"No online node on {self.config.name}.", code=Code.UNREACHABLE)
        return max(online, key=lambda item: item.get("maxmem", 0) - item.get("mem", 0))["node"]

    def _adopt(self, guest: Guest, spec: VMSpec) -> DriverTask:
        """A guest carrying the key exists (a crash after the clone): finish its build."""
        steps = ["adopt", "resize", "start"] if guest.key else ["adopt", "configure", "resize", "start"]
        data = {
            "action": "create",
            "kind": guest.kind,
            "node": guest.node,
            "vmid": guest.vmid,
            "steps": steps,
            "total": len(steps),
            "spec": self._spec_data(spec),
        }
        return DriverTask(ref=f"adopted:{guest.vmid}", backend_id=str(guest.vmid), data=data)

    # -- actions on an existing guest -------------------------------------------------
    def _action(self, action: str, guest: Guest, steps: list[str], **extra) -> DriverTask:
        data = {"action": action, "kind": guest.kind, "node": guest.node, "vmid": guest.vmid, "steps": steps, **extra}
        data["total"] = len(steps)
        ref = self._submit_first(data)
        if not ref:
            return self._done(action, str(guest.vmid))
        return DriverTask(ref=ref, backend_id=str(guest.vmid), data=data)

    @staticmethod
    def _done(action: str, backend_id: str) -> DriverTask:
        return DriverTask(ref=f"noop-{action}:{backend_id}", backend_id=backend_id, done=True, data={"action": action})

    def _existing(self, backend_id: str) -> Guest:
        guest = self._locate(backend_id)
        if guest is None:
            raise PermanentDriverError(f"Guest {backend_id} does not exist on {self.config.name}.", code=Code.NOT_FOUND)
        return guest

    def start(self, backend_id: str) -> DriverTask:
        guest = self._existing(backend_id)
        if guest.status == "running":
            return self._done("start", backend_id)
        return self._action("start", guest, ["start"])

    def stop(self, backend_id: str, *, force: bool = False, hard_stop_after: int | None = None) -> DriverTask:
        """Graceful shutdown; after ``hard_stop_after`` seconds (the plan's; else the hypervisor's
        ``hard_stop_after_seconds``) a power-off. 0 never forces; ``force`` powers off at once."""
        guest = self._existing(backend_id)
        if guest.status == "stopped":
            return self._done("stop", backend_id)
        if force:
            return self._action("stop", guest, ["stop"])
        return self._action("stop", guest, ["shutdown"], **self.settings.shutdown_policy(hard_stop_after))

    def reboot(self, backend_id: str) -> DriverTask:
        guest = self._existing(backend_id)
        if guest.status != "running":
            raise PermanentDriverError(f"Cannot reboot guest {backend_id}: it is not running.", code=Code.NOT_RUNNING)
        return self._action("reboot", guest, ["reboot"], **self.settings.shutdown_policy(None))

    def delete(self, backend_id: str) -> DriverTask:
        guest = self._locate(backend_id)
        if guest is None:
            return self._done("delete", backend_id)
        return self._action("delete", guest, ["stop", "destroy"] if guest.status == "running" else ["destroy"])

    # -- steps -------------------------------------------------------------------------
    @staticmethod
    def _already_there(step: str, code: str) -> bool:
        """Proxmox refused because the guest is already where the step takes it."""
        return (
            (step == "start" and code == Code.ALREADY_RUNNING)
            or (step in ("stop", "shutdown") and code == Code.NOT_RUNNING)
            or (step == "destroy" and code == Code.NOT_FOUND)
            or (step == "snapshot" and code == Code.SNAPSHOT_EXISTS)
            or (step == "delsnapshot" and code == Code.SNAPSHOT_MISSING)
        )

    def _submit(self, data: dict[str, Any]) -> str:
        """Submit the first step; returns its UPID, or "" when it finished at once (or had nothing to do)."""
        step = data["steps"][0]
        try:
            ref = steps.submit(self.client, self.settings, step, data)
        except PermanentDriverError as exc:
            if self._already_there(step, exc.code):
                return ""
            raise
        return ref if isinstance(ref, str) and ref.startswith("UPID:") else ""

    def _submit_first(self, data: dict[str, Any]) -> str:
        """Submit the steps in order until one is under way; returns its UPID, "" when none is.
        Steps that finished at once are dropped from ``data["steps"]``."""
        while data["steps"]:
            ref = self._submit(data)
            if ref:
                return ref
            data["steps"] = data["steps"][1:]
        return ""

    # -- poll ----------------------------------------------------------------------------
    def poll(self, task: DriverTask) -> TaskStatus:
        data = task.data
        if task.done or not data.get("steps"):
            return self._finished(task)
        if data.get("retry_at"):
            wait = data["retry_at"] - time.time()
            if wait > 0:
                return self._progress(task, poll_after=wait)
            fresh = data["steps"][0] == "clone" and not data.get("fixed_vmid")  # a rebuild keeps its VMID
            return self._run(task, dict(data, retry_at=None), fresh_vmid=fresh)
        if data["steps"][0] == "adopt":
            guest = self._locate(task.backend_id)
            if guest is None:
                raise PermanentDriverError(f"Guest {task.backend_id} vanished while it was being built.")
            return self._progress(task) if guest.lock in guests.BUILD_LOCKS else self._after(task)
        if data["steps"][0] == ha.WAIT_STEP:
            guest = self._locate(task.backend_id)
            done = ha.reached(guest, data, vmid=task.backend_id, now=time.time())
            return self._after(task) if done else self._progress(task)
        node = task.ref.split(":")[1]
        status = self.client.get(f"nodes/{node}/tasks/{task.ref}/status") or {}
        if status.get("status") == "running":
            return self._progress(task)
        exit_status = str(status.get("exitstatus") or "")
        if exit_status == "OK" or exit_status.startswith("WARNINGS"):
            want = ha.requested_status(task.ref)
            if want:  # HA only queued the request: follow the guest until it is there
                data = ha.follow(data, want, self.settings.ha_timeout_seconds)
                return self._progress(dataclasses.replace(task, data=data), handover=True)
            return self._after(task)
        return self._task_failed(task, exit_status or "the task ended without an exit status")

    def _progress(self, task: DriverTask, *, poll_after: float | None = None, handover: bool = False) -> TaskStatus:
        data = task.data
        total = max(int(data.get("total") or len(data["steps"])), 1)
        message = STEP_MESSAGES.get(data["steps"][0], data["steps"][0])
        if data.get("last_error"):
            message = f"{message}; retrying after: {data['last_error']}"
        return TaskStatus(
            done=False,
            progress=min(99, int(100 * (total - len(data["steps"])) / total)),
            poll_after=self.settings.poll_seconds if poll_after is None else poll_after,
            message=message[:200],
            task=task if handover else None,
        )

    def _after(self, task: DriverTask) -> TaskStatus:
        """The current step finished: go on with the next."""
        data = dict(task.data, retries=0, last_error="")
        data["steps"] = data["steps"][1:]
        return self._run(task, data)

    def _run(self, task: DriverTask, data: dict[str, Any], *, fresh_vmid: bool = False) -> TaskStatus:
        """Submit ``data``'s steps until one is under way (a UPID); hand its handle over."""
        if fresh_vmid:  # a failed clone is retried under a new id
            data["vmid"] = int(self.client.get("cluster/nextid"))
        backend_id = str(data.get("vmid") or task.backend_id)
        ref = self._submit_first(data)
        if ref:
            return self._progress(DriverTask(ref=ref, backend_id=backend_id, data=data), handover=True)
        return self._finished(DriverTask(ref=task.ref, backend_id=backend_id, done=True, data=data))

    def _finished(self, task: DriverTask) -> TaskStatus:
        action = task.data.get("action")
        if action == "delete":
            return TaskStatus(done=True, progress=100, vm=None, message="deleted")
        vm = self._observe(task.backend_id) if task.backend_id else None
        result = self._backup_result(task) if action == "backup_create" else {}
        return TaskStatus(done=True, progress=100, vm=vm, message=f"{action} done", result=result)

    def _task_failed(self, task: DriverTask, message: str) -> TaskStatus:
        data = dict(task.data)
        step = data["steps"][0]
        code, transient = classify(message)
        name = data.get("spec", {}).get("name") or f"guest {task.backend_id}"
        if step in ("shutdown", "reboot") and (code == Code.TIMEOUT or "did not stop" in message):
            if not data.get("force_after"):
                raise PermanentDriverError(
                    f"{name} did not shut down within {data['timeout']}s and its plan never forces a power-off "
                    f"(Proxmox: {message}).",
                    code="shutdown_timeout",
                )
            logger.info("%s did not shut down within %ss; powering off", name, data["timeout"])
            data["steps"] = ["stop"] if step == "shutdown" else ["stop", "start"]
            data["total"] = int(data.get("total") or 1) + len(data["steps"])
            return self._run(task, data)
        if self._already_there(step, code):
            return self._after(task)
        if step == "reboot" and code == Code.NOT_RUNNING:
            data["steps"] = ["start"]
            return self._run(task, data)
        if step == "clone" and code == Code.VMID_TAKEN and not data.get("fixed_vmid"):
            transient = True  # another client took the id: a new one is taken on the retry
        retries = int(data.get("retries") or 0)
        if transient and retries < STEP_RETRIES:
            delay = self.settings.step_retry_seconds * 2**retries
            logger.info("proxmox %s of %s failed (%s); retrying in %.0fs", step, task.backend_id, message, delay)
            data.update(retries=retries + 1, retry_at=time.time() + delay, last_error=message)
            return self._progress(dataclasses.replace(task, data=data), poll_after=delay, handover=True)
        suffix = f" after {retries + 1} tries" if transient else ""
        raise PermanentDriverError(f"Proxmox {STEP_MESSAGES.get(step, step)} failed{suffix}: {message}", code=code)

    def console(self, backend_id: str, *, protocol: str = ConsoleProtocol.VNC) -> ConsoleTarget:
        return console_target(self.client, self.config.credentials, self._existing(backend_id), protocol)

    def close(self) -> None:
        self.client.close()
