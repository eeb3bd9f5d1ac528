"""Proxmox VE (QEMU VMs and LXC containers) through ``proxmoxer``.

``client`` wraps the API and types its errors; ``driver`` registers the
``proxmox`` kind. Set-up on the Proxmox side: docs/PROXMOX.md.
"""

from .driver import ProxmoxDriver

__all__ = ["ProxmoxDriver"]
