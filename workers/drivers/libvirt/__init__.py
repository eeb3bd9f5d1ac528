"""libvirt / KVM driver (needs libvirt-python: requirements-libvirt.txt). See driver.py and docs/LIBVIRT.md."""

from .driver import LibvirtDriver

__all__ = ["LibvirtDriver"]
