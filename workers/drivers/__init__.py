"""Hypervisor drivers: ``base`` is the interface, one package per hypervisor kind.

A driver package registers itself with ``@register("<kind>")`` when imported;
``load_builtin_drivers`` imports the ones whose client library is installed.
"""

import importlib
import logging

logger = logging.getLogger(__name__)

BUILTIN = ("simulator", "proxmox", "openstack", "libvirt")
_loaded = False


def load_builtin_drivers() -> None:
    global _loaded
    if _loaded:
        return
    for name in BUILTIN:
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            # A driver whose client library is missing (libvirt-python needs
            # system packages) is simply unavailable; the kind says so on use.
            logger.info("driver %s unavailable: %s", name, exc)
    _loaded = True
