"""compute.capabilities is what compute knows of the drivers: filled from their declarations
(workers/apps.py), never from ``if kind ==``."""

from compute import capabilities
from workers.drivers.base import Capability, registered_drivers


def test_names_are_the_drivers_capability_values():
    assert {capabilities.SNAPSHOTS, capabilities.RESIZE, capabilities.REBUILD, capabilities.BACKUPS} <= set(
        Capability.ALL
    )


def test_registry_says_what_each_driver_declares():
    for kind, cls in registered_drivers().items():
        for capability in Capability.ALL:
            assert capabilities.supports(kind, capability) == cls.supports(capability), (kind, capability)
    assert not capabilities.supports("no-such-kind", capabilities.SNAPSHOTS)


def test_resize_restart_follows_resize_live():
    capabilities.register("probe", capabilities=frozenset({"resize"}), resize_live=frozenset({"disk"}))
    assert capabilities.resize_needs_restart("probe", changed={"disk"}) is False
    assert capabilities.resize_needs_restart("probe", changed={"disk", "memory"}) is True
    assert capabilities.resize_needs_restart("unknown", changed={"disk"}) is True
    assert capabilities.resize_needs_restart("unknown", changed=set()) is False
