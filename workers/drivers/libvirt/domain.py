"""What a domain we create looks like: its XML, its name, and the metadata we keep on it."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from xml.etree import ElementTree

from ..base import VMSpec
from .options import ImageRef, LibvirtSettings
from .templates import render, render_each

NS_URI = "http://controlplane.local/xmlns/libvirt/instance/1"


@dataclass(frozen=True)
class Instance:
    """What our ``<metadata>`` element records on a domain we created."""

    idempotency_key: str
    hard_stop_after: int | None
    volumes: tuple[str, ...]

    @classmethod
    def from_xml(cls, xml: str) -> Instance:
        root = ElementTree.fromstring(xml)
        hard_stop = (root.findtext("hard-stop-after") or "").strip()
        return cls(
            idempotency_key=(root.findtext("idempotency-key") or "").strip(),
            hard_stop_after=int(hard_stop) if hard_stop.isdigit() else None,
            volumes=tuple((v.text or "").strip() for v in root.findall("volume") if (v.text or "").strip()),
        )


def domain_name(spec: VMSpec) -> str:
    return f"{spec.name}-{spec.idempotency_key.replace('-', '')[:12]}"


def domain_xml(
    spec: VMSpec,
    image: ImageRef,
    settings: LibvirtSettings,
    *,
    name: str,
    disk: str,
    seed: str | None,
    hard_stop: int,
    kernel: str = "",
    initrd: str = "",
) -> str:
    """The domain's XML. ``kernel``/``initrd``: host paths for direct kernel boot (else boot from disk)."""
    s = settings
    if kernel:
        initrd_xml = render("boot-initrd", initrd=initrd) if initrd else ""
        cmdline = s.kernel_cmdline if image.cmdline is None else image.cmdline
        boot_xml = render("boot-kernel", kernel=kernel, initrd_xml=initrd_xml, cmdline=cmdline)
    else:
        boot_xml = render("boot-disk")
    seed_xml = ""
    if seed:
        sata = "q35" in s.machine
        seed_xml = render(
            "seed-cdrom", pool=s.pool, volume=seed, dev="sda" if sata else "hdc", bus="sata" if sata else "ide"
        )
    if s.network:
        interface_xml = render("interface-network", network=s.network)
    elif s.bridge:
        interface_xml = render("interface-bridge", bridge=s.bridge)
    else:
        interface_xml = ""
    if s.serial_log_dir:
        serial_xml = render("serial-file", path=posixpath.join(s.serial_log_dir, f"{name}.log"))
    else:
        serial_xml = render("serial-pty")
    return render(
        "domain",
        domain_type=s.domain_type,
        name=name,
        title=spec.name,
        ns_uri=NS_URI,
        idempotency_key=spec.idempotency_key,
        hard_stop_after=hard_stop,
        volumes_xml=render_each("metadata-volume", [{"volume": v} for v in (disk, seed) if v]),
        memory_mib=spec.memory_mib,
        vcpus=spec.vcpus,
        firmware_attr_xml=render("firmware-efi") if (image.firmware or s.firmware) == "efi" else "",
        machine_attr_xml=render("machine", machine=s.machine) if s.machine else "",
        boot_xml=boot_xml,
        cpu_xml=render("cpu-host" if s.domain_type == "kvm" else "cpu-emulated"),
        pool=s.pool,
        disk_volume=disk,
        seed_xml=seed_xml,
        interface_xml=interface_xml,
        serial_xml=serial_xml,
        graphics_xml=render("graphics-vnc", listen=s.vnc_listen) if s.vnc_listen else "",
    )


def wants_seed(spec: VMSpec, image: ImageRef, settings: LibvirtSettings) -> bool:
    """A NoCloud seed is attached when cloud-init is on (image option, else setting) and there is something
    to say (an SSH key, user data, or static addresses)."""
    enabled = settings.cloud_init if image.cloud_init is None else image.cloud_init
    return enabled and bool(spec.ssh_public_key.strip() or spec.user_data.strip() or spec.network)
