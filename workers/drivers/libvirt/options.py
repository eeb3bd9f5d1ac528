"""The libvirt hypervisor's settings and the image reference syntax.

Settings (``Hypervisor.connection``; see docs/LIBVIRT.md):

``uri``                  libvirt URI: ``qemu:///system``, ``qemu+ssh://root@host/system``,
                         ``qemu+tls://host/system``, ``test:///default`` (required)
``pool``                 storage pool holding base images and guest disks (``default``)
``network`` / ``bridge`` libvirt network or host bridge for the guest's NIC (neither: no NIC)
``disk_mode``            ``overlay`` (qcow2 backed by the base volume, instant) or ``copy``
``domain_type``          ``kvm`` (production), ``qemu`` (software emulation), ``test``
``machine``              QEMU machine type (``q35``, ``pc``...); empty: libvirt's default
``firmware``             ``bios`` or ``efi``
``cloud_init``           attach a NoCloud seed when the VM has an SSH key or user data (false)
``serial_log_dir``       directory on the host for serial console logs (empty: a pty)
``shutdown_timeout``     seconds a graceful stop waits before powering off when the plan
                         does not say (120; 0 never forces)
``shutdown_retry_seconds`` how often the ACPI shutdown is re-sent while waiting (1)
``kernel_cmdline``       kernel command line for direct kernel boot (``console=ttyS0``)
``vnc_listen``           host address the guests' VNC screens listen on, port chosen by
                         libvirt (``127.0.0.1``; empty: no screen). For a remote host, an
                         address the console proxy reaches (docs/CONSOLE.md)
``console_host``         address the console proxy connects to (default: ``vnc_listen``,
                         or the URI's host when that is a wildcard or loopback on a remote URI)

Image reference (``ImageReference.ref``): the base volume's name in the pool,
optionally followed by ``?`` and options, e.g.
``debian-12.qcow2`` or ``tiny.qcow2?kernel=vmlinuz&initrd=initrd.img&cmdline=console=ttyS0+quiet``.
``kernel``/``initrd`` are volumes in the pool or absolute paths on the host (direct
kernel boot); ``cmdline``, ``firmware`` and ``cloud_init`` (0/1) override the settings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from ..base import PermanentDriverError

DISK_MODES = ("overlay", "copy")
DOMAIN_TYPES = ("kvm", "qemu", "test")
FIRMWARES = ("bios", "efi")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _misconfigured(message: str) -> PermanentDriverError:
    return PermanentDriverError(message, code="misconfigured")


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise _misconfigured(f"libvirt setting {name} must be true or false, not {value!r}.")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _misconfigured(f"libvirt setting {name} must be one of {', '.join(choices)}, not {value!r}.")
    return value


@dataclass(frozen=True)
class LibvirtSettings:
    uri: str
    pool: str = "default"
    network: str = ""
    bridge: str = ""
    disk_mode: str = "overlay"
    domain_type: str = "kvm"
    machine: str = ""
    firmware: str = "bios"
    cloud_init: bool = False
    serial_log_dir: str = ""
    shutdown_timeout: int = 120
    shutdown_retry_seconds: float = 1.0
    kernel_cmdline: str = "console=ttyS0"
    vnc_listen: str = "127.0.0.1"
    console_host: str = ""

    @classmethod
    def from_config(cls, settings: dict[str, Any]) -> LibvirtSettings:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise _misconfigured(f"Unknown libvirt settings: {', '.join(unknown)} (known: {', '.join(sorted(known))}).")
        if not settings.get("uri"):
            raise _misconfigured("The libvirt hypervisor needs settings.uri (e.g. qemu:///system).")
        values = dict(settings)
        try:
            for name in ("shutdown_timeout",):
                if name in values:
                    values[name] = int(values[name])
            if "shutdown_retry_seconds" in values:
                values["shutdown_retry_seconds"] = float(values["shutdown_retry_seconds"])
        except (TypeError, ValueError) as exc:
            raise _misconfigured(f"libvirt timing settings must be numbers: {exc}") from None
        if "cloud_init" in values:
            values["cloud_init"] = _bool("cloud_init", values["cloud_init"])
        result = cls(**values)
        _choice("disk_mode", result.disk_mode, DISK_MODES)
        _choice("domain_type", result.domain_type, DOMAIN_TYPES)
        _choice("firmware", result.firmware, FIRMWARES)
        if result.network and result.bridge:
            raise _misconfigured("Set either libvirt network or bridge, not both.")
        if result.shutdown_timeout < 0 or result.shutdown_retry_seconds <= 0:
            raise _misconfigured("shutdown_timeout must be >= 0 and shutdown_retry_seconds > 0.")
        return result


@dataclass(frozen=True)
class ImageRef:
    volume: str
    kernel: str = ""
    initrd: str = ""
    cmdline: str | None = None
    firmware: str | None = None
    cloud_init: bool | None = None

    @classmethod
    def parse(cls, ref: str) -> ImageRef:
        volume, _, query = (ref or "").strip().partition("?")
        if not volume:
            raise PermanentDriverError("No base volume named in the image reference.", code="no_image")
        options: dict[str, Any] = {}
        for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
            if key in ("kernel", "initrd", "cmdline"):
                options[key] = value
            elif key == "firmware":
                options[key] = _choice("firmware (image option)", value, FIRMWARES)
            elif key == "cloud_init":
                options[key] = _bool("cloud_init (image option)", value)
            else:
                raise PermanentDriverError(f"Unknown image option {key!r} in {ref!r}.", code="no_image")
        if options.get("initrd") and not options.get("kernel"):
            raise PermanentDriverError(f"Image {ref!r} names an initrd without a kernel.", code="no_image")
        return cls(volume=volume, **options)
