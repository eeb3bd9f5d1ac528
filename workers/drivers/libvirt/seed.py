"""cloud-init NoCloud seed: the ``cidata`` ISO a cloud image reads on first boot.

It carries ``meta-data`` (instance id, host name), ``user-data`` (the SSH key as
a cloud-config, plus the user's own user data as a second MIME part when given)
and ``network-config`` (DHCP on every Ethernet NIC, or the static addresses of
``VMSpec.network`` when the control plane's IP pool gave the guest some). The files are JSON, which
YAML accepts, so nothing is hand-quoted. Built in memory with pycdlib (pure
Python); no genisoimage on the worker.
"""

from __future__ import annotations

import io
import json
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pycdlib

VOLUME_LABEL = "cidata"  # what NoCloud looks for
NETWORK_CONFIG = {"version": 2, "ethernets": {"all-ethernet": {"match": {"name": "e*"}, "dhcp4": True}}}
_ISO9660_NAMES = {"meta-data": "METADATA", "user-data": "USERDATA", "network-config": "NETWORKC"}


def network_config(network: dict) -> dict:
    """Netplan v2 for cloud-init: static addresses, default routes and resolvers; DHCP when empty."""
    families = [network[f] for f in ("ipv4", "ipv6") if network.get(f)]
    if not families:
        return NETWORK_CONFIG
    nic: dict = {
        "match": {"name": "e*"},
        "addresses": [f"{c['address']}/{c['prefix_length']}" for c in families],
        "routes": [{"to": "default", "via": c["gateway"]} for c in families if c.get("gateway")],
    }
    if network.get("dns"):
        nic["nameservers"] = {"addresses": list(network["dns"])}
    return {"version": 2, "ethernets": {"all-ethernet": nic}}


def nocloud_files(
    *, instance_id: str, hostname: str, ssh_public_key: str = "", user_data: str = "", network: dict | None = None
) -> dict[str, bytes]:
    """The seed's files by name."""
    meta = {"instance-id": instance_id, "local-hostname": hostname}
    config: dict = {"hostname": hostname}
    if ssh_public_key.strip():
        config["ssh_authorized_keys"] = [key for key in ssh_public_key.strip().splitlines() if key.strip()]
    ours = "#cloud-config\n" + json.dumps(config, indent=2) + "\n"
    if user_data.strip():
        # cloud-init merges multipart user data; a text/plain part is typed by its
        # first line (#cloud-config, #!/bin/sh...), so any user data works as given.
        message = MIMEMultipart()
        message.attach(MIMEText(ours, "cloud-config"))
        message.attach(MIMEText(user_data, "plain"))
        users = message.as_string()
    else:
        users = ours
    return {
        "meta-data": (json.dumps(meta, indent=2) + "\n").encode(),
        "user-data": users.encode(),
        "network-config": (json.dumps(network_config(network or {}), indent=2) + "\n").encode(),
    }


def build_iso(files: dict[str, bytes]) -> bytes:
    """An ISO 9660 image labelled ``cidata`` with Rock Ridge and Joliet names."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=VOLUME_LABEL)
    for name, data in files.items():
        iso.add_fp(io.BytesIO(data), len(data), f"/{_ISO9660_NAMES[name]}.;1", rr_name=name, joliet_path=f"/{name}")
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    return out.getvalue()
