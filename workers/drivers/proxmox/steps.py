"""Submitting one step of an action: each is one Proxmox call, answered with a UPID
(or nothing, when the change was synchronous or there was nothing to do).

``data`` is the handle's state (see driver.py): kind ("qemu"/"lxc"), node,
vmid, and for creates ``spec`` (name, key, sizes, SSH key, template or OS template).
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from ..base import PermanentDriverError
from . import backups, guests
from . import resize as resizing
from .client import Code, ProxmoxClient
from .settings import ProxmoxSettings


def _ipconfig(settings: ProxmoxSettings, spec: dict[str, Any]) -> str:
    return spec.get("ipconfig") or settings.ipconfig


def _bridge(settings: ProxmoxSettings, spec: dict[str, Any]) -> str | None:
    return spec.get("bridge") or settings.bridge


def submit(client: ProxmoxClient, settings: ProxmoxSettings, step: str, data: dict[str, Any]) -> str | None:
    path = guests.guest_path(data["node"], data["kind"], data.get("vmid"))
    if step == "clone":
        return clone(client, settings, data)
    if step == "ctcreate":
        return create_container(client, settings, data)
    if step == "configure":
        return configure(client, settings, data)
    if step == "resize":
        return resize(client, data)
    if step == "resize_config":
        return resizing.resize_config(client, data)
    if step == "snapshot":  # disk-only (vmstate 0): no state storage needed
        return client.post(f"{path}/snapshot", snapname=data["ref"], description="control plane")
    if step == "rollback":
        return client.post(f"{path}/snapshot/{data['ref']}/rollback")
    if step == "delsnapshot":
        return client.delete(f"{path}/snapshot/{data['ref']}")
    if step in backups.STEPS:  # vzdump, restore, delbackup: backups.py
        return backups.submit_step(client, step, data)
    if step == "destroy":
        return client.delete(path, purge=1, **{"destroy-unreferenced-disks": 1})
    if step in ("shutdown", "reboot"):
        return client.post(f"{path}/status/{step}", timeout=data["timeout"])
    if step in ("start", "stop"):
        return client.post(f"{path}/status/{step}")
    raise PermanentDriverError(f"Unknown step {step!r}.", code=Code.INVALID)


def clone(client: ProxmoxClient, settings: ProxmoxSettings, data: dict[str, Any]) -> str:
    """Clone the template; the description carries the key from the first moment the guest exists."""
    spec = data["spec"]
    full = settings.clone_mode == "full"
    params = {
        "newid": data["vmid"],
        "description": guests.marker(spec["key"]) + spec.get("note", ""),
        "full": 1 if full else 0,
        "target": data["node"] if data["node"] != spec["template_node"] else None,
        "storage": settings.storage if full else None,
        "pool": settings.pool,
        ("name" if data["kind"] == "qemu" else "hostname"): spec["name"],
    }
    return client.post(guests.guest_path(spec["template_node"], data["kind"], spec["template"], "clone"), **params)


def create_container(client: ProxmoxClient, settings: ProxmoxSettings, data: dict[str, Any]) -> str:
    """A container from an OS template volume: sized, tagged and keyed in one call."""
    spec = data["spec"]
    return client.post(
        f"nodes/{data['node']}/lxc",
        vmid=data["vmid"],
        ostemplate=spec["ostemplate"],
        hostname=spec["name"],
        cores=spec["vcpus"],
        memory=spec["memory_mib"],
        rootfs=f"{settings.storage or 'local-lvm'}:{spec['disk_gib']}",
        net0=f"name=eth0,bridge={_bridge(settings, spec) or 'vmbr0'},{_ipconfig(settings, spec)}",
        nameserver=spec.get("nameserver") or None,
        tags=guests.key_tag(spec["key"]),
        description=guests.marker(spec["key"]) + spec.get("note", ""),
        pool=settings.pool,
        unprivileged=1,
        **({"ssh-public-keys": spec["ssh_public_key"]} if spec["ssh_public_key"] else {}),
    )


def configure(client: ProxmoxClient, settings: ProxmoxSettings, data: dict[str, Any]) -> str | None:
    """Size and tag the clone; for QEMU also cloud-init (user, SSH key, IP configuration)."""
    spec, path = data["spec"], guests.guest_path(data["node"], data["kind"], data["vmid"], "config")
    current = client.get(path) or {}
    params: dict[str, Any] = {
        "cores": spec["vcpus"],
        "memory": spec["memory_mib"],
        "tags": guests.merged_tags(current.get("tags"), spec["key"]),
    }
    if data["kind"] == "lxc":
        if _bridge(settings, spec) or spec.get("ipconfig"):
            wanted = {"bridge": _bridge(settings, spec), **guests.properties(_ipconfig(settings, spec))}
            changes = {name: value for name, value in wanted.items() if value}
            params["net0"] = guests.with_properties(current.get("net0"), changes, "name=eth0")
            params["nameserver"] = spec.get("nameserver") or None
        return client.put(path, **params)  # synchronous for containers
    params["ipconfig0"] = _ipconfig(settings, spec)
    params["nameserver"] = spec.get("nameserver") or None
    if settings.ci_user:
        params["ciuser"] = settings.ci_user
    if spec["ssh_public_key"]:
        params["sshkeys"] = urllib.parse.quote(spec["ssh_public_key"], safe="")  # Proxmox wants it URL-encoded
    if _bridge(settings, spec) or spec.get("net0"):  # a rebuild keeps the old NIC (its MAC)
        changes = {"bridge": _bridge(settings, spec)} if _bridge(settings, spec) else {}
        params["net0"] = guests.with_properties(spec.get("net0") or current.get("net0"), changes, "virtio")
    return client.post(path, **params)  # the asynchronous form: a qmconfig task


def resize(client: ProxmoxClient, data: dict[str, Any]) -> str | None:
    """Grow the boot disk to the plan's size (never shrinks; already big enough: nothing to do)."""
    path = guests.guest_path(data["node"], data["kind"], data["vmid"])
    disk = guests.boot_disk(data["kind"], client.get(f"{path}/config") or {})
    wanted = int(data["spec"]["disk_gib"]) * guests.GIB
    if disk is None or disk[1] is None or disk[1] >= wanted:
        return None
    return client.put(f"{path}/resize", disk=disk[0], size=f"{data['spec']['disk_gib']}G")
