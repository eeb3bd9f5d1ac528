"""Proxmox resize and rebuild, as steps of the driver's UPID machinery (driver.py, steps.py).

**Resize** (QEMU and LXC): ``resize_config`` sets ``cores`` / ``memory`` (QEMU: the
asynchronous ``POST config``, a ``qmconfig`` task; LXC: ``PUT config``), ``resize`` grows the
boot disk (``PUT resize``, live on a running guest; a smaller disk is refused before anything
is sent), and for a running QEMU guest ``reboot`` (PVE's shutdown + start, which applies the
pending ``cores``/``memory``: PVE's default ``hotplug`` has neither). A container takes cores
and memory live. The steps are computed from ``GET pending`` (what runs now and what the next
start will use) on every submit, so a resubmit after a crash only does what is left.

**Rebuild** recreates the guest under the **same VMID**: ``stop`` → ``destroy`` (purge) →
``clone`` of the new image's template (or ``ctcreate`` from an OS template) with ``newid`` =
the VMID → ``configure`` (the plan's sizes, the new SSH key, the same ``ipconfig0`` from the
control plane's IP pool and the old ``net0``, so the MAC and the address stay) → ``resize`` →
``start`` when it ran. The clone's description carries the rebuild operation's key: a
resubmit that finds it adopts the new guest (finishes configure/resize/start), never clones a
second one; a resubmit that finds the VMID free (a crash between destroy and clone) clones
again. So the guest ends with one disk set. A guest with snapshots is refused (destroy would
drop them).
"""

from __future__ import annotations

from typing import Any

from ..base import DriverTask, PermanentDriverError, ResizeSpec, VMSpec
from . import guests
from .client import Code, ProxmoxClient

SIZES = (("cores", "vcpus"), ("memory", "memory_mib"))


def pending(client: ProxmoxClient, node: str, kind: str, vmid: int) -> tuple[dict, dict]:
    """(what runs now, what the next start uses) from ``GET pending``."""
    rows = client.get(guests.guest_path(node, kind, vmid, "pending")) or []
    now = {row["key"]: row.get("value") for row in rows if "value" in row}
    after = dict(now)
    for row in rows:
        if row.get("delete"):
            after.pop(row["key"], None)
        elif "pending" in row:
            after[row["key"]] = row["pending"]
    return now, after


def _differs(values: dict, spec: dict) -> bool:
    return any(str(values.get(key)) != str(spec[field]) for key, field in SIZES)


def resize_config(client: ProxmoxClient, data: dict[str, Any]) -> str | None:
    """Set cores and memory (step ``resize_config``); nothing when the next start has them."""
    spec = data["spec"]
    _, after = pending(client, data["node"], data["kind"], data["vmid"])
    if not _differs(after, spec):
        return None
    path = guests.guest_path(data["node"], data["kind"], data["vmid"], "config")
    values = {"cores": spec["vcpus"], "memory": spec["memory_mib"]}
    return client.put(path, **values) if data["kind"] == "lxc" else client.post(path, **values)


class ProxmoxResize:
    """Mixed into ProxmoxDriver (``client``, ``_existing``, ``_locate``, ``_action``, ``_create_data``,
    ``_resources``, ``_snapshot_names``, ``_spec_data``, ``settings``)."""

    def resize(self, backend_id: str, *, spec: ResizeSpec) -> DriverTask:
        guest = self._existing(backend_id)
        config = self.client.get(guest.path("config")) or {}
        disk = guests.boot_disk(guest.kind, config)
        if disk and disk[1] and spec.disk_gib * guests.GIB < disk[1]:
            raise PermanentDriverError(
                f"Disks only grow: guest {backend_id}'s {disk[0]} has {disk[1] / guests.GIB:g} GiB "
                f"and cannot become {spec.disk_gib} GiB.",
                code="disk_shrink",
            )
        sizes = {"vcpus": spec.vcpus, "memory_mib": spec.memory_mib, "disk_gib": spec.disk_gib}
        now, _ = pending(self.client, guest.node, guest.kind, guest.vmid)
        steps = ["resize_config", "resize"]
        if guest.kind == "qemu" and guest.status == "running" and _differs(now, sizes):
            steps.append("reboot")  # applies the pending cores/memory
        return self._action("resize", guest, steps, spec=sizes, **self.settings.shutdown_policy(None))

    def rebuild(self, backend_id: str, *, spec: VMSpec) -> DriverTask:
        if spec.user_data:
            raise PermanentDriverError(
                "Proxmox cannot take cloud-init user data through its API; leave user data empty.", code=Code.INVALID
            )
        vmid = self._vmid(backend_id)
        resources = self._resources()
        guest = self._locate(backend_id, resources)
        kind = "lxc" if spec.guest_type == "container" else "qemu"
        if guest is not None and guest.template:
            raise PermanentDriverError(f"Guest {backend_id} is a template.", code=Code.INVALID)
        config = self.client.get(guest.path("config")) or {} if guest else {}
        if guest is not None and guests.marker(spec.idempotency_key) in (config.get("description") or ""):
            # a resubmit after the clone: finish this rebuild's guest, never clone a second
            steps = (["adopt"] if guest.lock in guests.BUILD_LOCKS else []) + ["configure", "resize"]
            if guest.status != "running" and "cp-rebuild-start" in (config.get("description") or ""):
                steps.append("start")
            data = {
                "action": "rebuild",
                "kind": guest.kind,
                "node": guest.node,
                "vmid": vmid,
                "steps": steps,
                "total": len(steps),
                "spec": {**self._spec_data(spec), "net0": config.get("net0", "")},
                "fixed_vmid": True,
            }
            return self._rebuild_task(data)
        if guest is not None and self._snapshot_names(guest):
            raise PermanentDriverError(
                f"Guest {backend_id} has snapshots; a rebuild recreates it and would drop them: delete them first.",
                code="has_snapshots",
            )
        data = self._create_data(spec, kind, resources)
        start = guest is None or guest.status == "running"  # a VMID found free: a crash after destroy
        if guest is not None:
            data["node"] = guest.node
        data.update(action="rebuild", vmid=vmid, fixed_vmid=True)
        data["spec"]["net0"] = config.get("net0", "")
        data["spec"]["note"] = "\ncp-rebuild-start" if start else ""
        build = data["steps"][:-1]  # without the create's start
        before = (["stop"] if guest is not None and guest.status == "running" else []) + (["destroy"] if guest else [])
        data["steps"] = before + build + (["start"] if start else [])
        data["total"] = len(data["steps"])
        return self._rebuild_task(data)

    def _rebuild_task(self, data: dict) -> DriverTask:
        if data["steps"][0] == "adopt":  # polled until the clone's lock is gone (driver.poll)
            return DriverTask(ref=f"adopted:{data['vmid']}", backend_id=str(data["vmid"]), data=data)
        ref = self._submit_first(data)
        if not ref:
            return self._done("rebuild", str(data["vmid"]))
        return DriverTask(ref=ref, backend_id=str(data["vmid"]), data=data)
