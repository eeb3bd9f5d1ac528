"""Reading Proxmox's answers: guests from ``cluster/resources``, tags, disks, addresses.

Pure functions over the dicts the API returns; no I/O.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass
from typing import Any

from ..base import HypervisorVM, PowerState

TAG_PREFIX = "cp-"
MARKER = "control-plane-key:"  # in the description, from the clone on (tags come one step later)
GIB = 1024**3
SIZE_UNITS = {"K": 1024, "M": 1024**2, "G": GIB, "T": 1024**4}
QEMU_DISK_PREFIXES = ("scsi", "virtio", "sata", "ide")
BUILD_LOCKS = ("clone", "create")  # a guest still being made


def key_tag(key: str) -> str:
    """The tag carrying an idempotency key: ``cp-`` + the UUID's 32 hex digits (tags allow [a-z0-9_-])."""
    try:
        body = uuid.UUID(str(key)).hex
    except ValueError:
        body = re.sub(r"[^a-z0-9_-]", "_", str(key).lower())
    return TAG_PREFIX + body


def key_from_tags(tags: str | None) -> str | None:
    for tag in split_tags(tags):
        if tag.startswith(TAG_PREFIX):
            body = tag[len(TAG_PREFIX) :]
            return str(uuid.UUID(hex=body)) if re.fullmatch(r"[0-9a-f]{32}", body) else body
    return None


def split_tags(tags: str | None) -> list[str]:
    return [tag for tag in re.split(r"[;, ]+", tags or "") if tag]


def merged_tags(existing: str | None, key: str) -> str:
    """The guest's tags (copied from its template) without any old key tag, plus this key's."""
    kept = [tag for tag in split_tags(existing) if not tag.startswith(TAG_PREFIX)]
    return ";".join([*kept, key_tag(key)])


def marker(key: str) -> str:
    return f"{MARKER}{key}"


@dataclass(frozen=True)
class Guest:
    """One entry of ``cluster/resources?type=vm``."""

    vmid: int
    kind: str  # "qemu" or "lxc"
    node: str
    name: str
    status: str
    tags: str
    lock: str
    template: bool
    hastate: str = ""  # the HA service state ("started", "stopped", "error", ...); "" when not under HA

    @classmethod
    def from_resource(cls, item: dict[str, Any]) -> Guest:
        return cls(
            vmid=int(item["vmid"]),
            kind=str(item.get("type") or str(item.get("id", "qemu/")).split("/")[0]),
            node=str(item.get("node", "")),
            name=str(item.get("name") or ""),
            status=str(item.get("status") or "unknown"),
            tags=str(item.get("tags") or ""),
            lock=str(item.get("lock") or ""),
            template=bool(int(item.get("template") or 0)),
            hastate=str(item.get("hastate") or ""),
        )

    @property
    def key(self) -> str | None:
        return key_from_tags(self.tags)

    @property
    def power_state(self) -> str:
        return {"running": PowerState.RUNNING, "stopped": PowerState.STOPPED}.get(self.status, PowerState.UNKNOWN)

    def path(self, suffix: str = "") -> str:
        return guest_path(self.node, self.kind, self.vmid, suffix)

    def vm(self, ip_addresses: tuple[str, ...] = ()) -> HypervisorVM:
        return HypervisorVM(
            backend_id=str(self.vmid),
            name=self.name,
            power_state=self.power_state,
            idempotency_key=self.key,
            ip_addresses=ip_addresses,
            extra={"node": self.node, "type": self.kind, "lock": self.lock, "tags": self.tags},
        )


def guest_path(node: str, kind: str, vmid: int | str, suffix: str = "") -> str:
    path = f"nodes/{node}/{kind}/{vmid}"
    return f"{path}/{suffix}" if suffix else path


def parse_size(text: str | None) -> int | None:
    """Bytes of a Proxmox size ("32G", "512M"; a bare number is GiB), or None."""
    found = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT])?", str(text or "").strip(), re.IGNORECASE)
    if not found:
        return None
    return int(float(found.group(1)) * SIZE_UNITS.get((found.group(2) or "G").upper(), 1))


def _props(value: str) -> tuple[str, dict[str, str]]:
    first, props = "", {}
    for index, part in enumerate(str(value).split(",")):
        name, eq, rest = part.partition("=")
        if eq:
            props[name] = rest
        elif index == 0:
            first = part
    return first, props


def boot_disk(kind: str, config: dict[str, Any]) -> tuple[str, int | None] | None:
    """(config key, size in bytes) of the disk to grow: LXC's rootfs, QEMU's boot disk."""
    if kind == "lxc":
        return ("rootfs", parse_size(_props(config.get("rootfs", ""))[1].get("size"))) if "rootfs" in config else None
    order = _props(config.get("boot", ""))[1].get("order", "")
    candidates = [dev for dev in order.split(";") if dev] + sorted(
        key for key in config if re.fullmatch(r"(scsi|virtio|sata|ide)\d+", key)
    )
    for key in candidates:
        if not key.startswith(QEMU_DISK_PREFIXES) or key not in config:
            continue
        volume, props = _props(config[key])
        if props.get("media") == "cdrom" or volume in ("none", "cdrom") or "cloudinit" in volume:
            continue
        return key, parse_size(props.get("size"))
    return None


def with_properties(value: str | None, changes: dict[str, str], default_first: str = "") -> str:
    """A property string ("virtio=BC:24:..,bridge=vmbr0") with ``changes`` set, the rest (MAC, model) kept."""
    parts = [part for part in str(value or default_first).split(",") if part]
    seen = set()
    for index, part in enumerate(parts):
        name = part.partition("=")[0]
        if name in changes:
            parts[index] = f"{name}={changes[name]}"
            seen.add(name)
    parts += [f"{name}={changes[name]}" for name in changes if name not in seen]
    return ",".join(parts)


def properties(value: str) -> dict[str, str]:
    return _props(value)[1]


def static_addresses(value: str | None) -> tuple[str, ...]:
    """Addresses in an ``ipconfig0`` / LXC ``net0`` value (``ip=10.0.0.5/24``); none for dhcp."""
    props = _props(value or "")[1]
    found = []
    for name in ("ip", "ip6"):
        address = props.get(name, "").split("/")[0]
        if address and address not in ("dhcp", "auto", "manual"):
            found.append(address)
    return tuple(found)


def static_ipconfig(network: dict[str, Any]) -> str:
    """``VMSpec.network`` as an ``ipconfig0`` / LXC ``net0`` ip part; "" when it has no address."""
    parts = []
    for family, ip_key, gw_key in (("ipv4", "ip", "gw"), ("ipv6", "ip6", "gw6")):
        config = network.get(family)
        if config:
            parts.append(f"{ip_key}={config['address']}/{config['prefix_length']}")
            if config.get("gateway"):
                parts.append(f"{gw_key}={config['gateway']}")
    return ",".join(parts)


def usable(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified)


def agent_addresses(answer: Any) -> tuple[str, ...]:
    """Addresses from QEMU's ``agent/network-get-interfaces``."""
    interfaces = answer.get("result", []) if isinstance(answer, dict) else answer or []
    found = []
    for interface in interfaces:
        for item in interface.get("ip-addresses") or []:
            address = str(item.get("ip-address", ""))
            if usable(address) and address not in found:
                found.append(address)
    return tuple(found)


def lxc_addresses(answer: Any) -> tuple[str, ...]:
    """Addresses from LXC's ``interfaces``."""
    found = []
    for interface in answer or []:
        for family in ("inet", "inet6"):
            address = str(interface.get(family) or "").split("/")[0]
            if usable(address) and address not in found:
                found.append(address)
    return tuple(found)
