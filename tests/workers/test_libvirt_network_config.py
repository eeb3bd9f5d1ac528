"""Pool addresses reach libvirt guests through the NoCloud seed's ``network-config`` (fast tier)."""

import json

from tests.workers.libvirt_support import FAST_BASE, FAST_SETTINGS, iso_files, spec_factory
from workers.drivers.libvirt.domain import wants_seed
from workers.drivers.libvirt.options import ImageRef, LibvirtSettings
from workers.drivers.libvirt.seed import build_iso, nocloud_files

NETWORK = {
    "ipv4": {"address": "192.0.2.7", "prefix_length": 24, "gateway": "192.0.2.1"},
    "ipv6": {"address": "2001:db8:10::7", "prefix_length": 64, "gateway": "2001:db8:10::1"},
    "dns": ["192.0.2.53"],
    "network": "",
}


def test_the_seed_carries_static_addresses_routes_and_resolvers():
    files = nocloud_files(instance_id="k", hostname="web-1", network=NETWORK)
    _, read = iso_files(build_iso(files))
    assert json.loads(read["network-config"]) == {
        "version": 2,
        "ethernets": {
            "all-ethernet": {
                "match": {"name": "e*"},
                "addresses": ["192.0.2.7/24", "2001:db8:10::7/64"],
                "routes": [{"to": "default", "via": "192.0.2.1"}, {"to": "default", "via": "2001:db8:10::1"}],
                "nameservers": {"addresses": ["192.0.2.53"]},
            }
        },
    }


def test_without_a_pool_the_seed_asks_for_dhcp():
    config = json.loads(nocloud_files(instance_id="k", hostname="h", network={})["network-config"])
    assert config["ethernets"]["all-ethernet"] == {"match": {"name": "e*"}, "dhcp4": True}


def test_static_addresses_alone_are_reason_enough_for_a_seed():
    on = LibvirtSettings.from_config({**FAST_SETTINGS, "cloud_init": "true"})
    make_spec = spec_factory(FAST_BASE)
    assert wants_seed(make_spec(network=NETWORK), ImageRef.parse(FAST_BASE), on)
    assert not wants_seed(make_spec(), ImageRef.parse(FAST_BASE), on)
