"""Floating IPs: a per-project-network server is made reachable from the external network.

Each floating IP we make carries the description ``cp-server:<server id>``, so it is found
again after a crash (associate: by the server's port; release: by that description, even
once the server and its port are gone). Allocation and association are one Neutron call
(``port_id`` given at creation), so a floating IP never exists unattached because of us.
"""

from __future__ import annotations

from typing import Any

from .client import translate


def description(server_id: str) -> str:
    return f"cp-server:{server_id}"


def ensure(conn: Any, *, server_id: str, external_network_id: str, project_id: str | None) -> str | None:
    """The server's floating address, allocated and associated if it has none. None when the
    server has no port yet (Neutron still wiring it: ask again on the next poll)."""
    net = conn.network
    with translate(f"looking up the ports of server {server_id}"):
        ports = list(net.ports(device_id=server_id))
    if not ports:
        return None
    with translate(f"looking up the floating IP of server {server_id}"):
        for port in ports:
            for ip in net.ips(port_id=port.id):
                return ip.floating_ip_address
    attrs: dict[str, Any] = {
        "floating_network_id": external_network_id,
        "port_id": ports[0].id,
        "description": description(server_id),
    }
    if project_id:
        attrs["project_id"] = project_id
    with translate(f"allocating a floating IP for server {server_id}"):
        return net.create_ip(**attrs).floating_ip_address


def release(conn: Any, *, server_id: str) -> int:
    """Give back every floating IP we made for the server. Returns how many."""
    net = conn.network
    with translate(f"looking up the floating IPs of server {server_id}"):
        ours = list(net.ips(description=description(server_id)))
    for ip in ours:
        with translate(f"releasing floating IP {ip.floating_ip_address}"):
            net.delete_ip(ip, ignore_missing=True)
    return len(ours)
