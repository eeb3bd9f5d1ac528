"""Reverse DNS rules (pure: no ORM). Writes are in compute/services/rdns.py; the PowerDNS side
in workers/rdns.py. See docs/NETWORKING.md "Reverse DNS".

Names are kept as absolute names with the trailing dot (``mail.example.com.``), the form
PowerDNS stores. A reverse zone must cover the whole pool prefix: ``203.0.113.0/24`` ->
``113.0.203.in-addr.arpa.``; an IPv6 prefix -> its nibble zone. Classless (RFC 2317)
delegation of a v4 prefix longer than /24 is not supported: such a pool uses the /24 zone.
"""

from __future__ import annotations

import ipaddress
import re

import dns.exception
import dns.nameserver
import dns.resolver

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class ReverseDNSError(ValueError):
    """A name or zone the rules refuse; the message is for the user."""


def ptr_owner(address: str) -> str:
    """The PTR record's owner name: ``5.113.0.203.in-addr.arpa.``."""
    return ipaddress.ip_address(address).reverse_pointer + "."


def hostname(value: str) -> str:
    """A valid absolute host name (lower case, trailing dot) or ReverseDNSError."""
    name = (value or "").strip().lower()
    if not name:
        raise ReverseDNSError("Give a host name, e.g. mail.example.com.")
    if not name.isascii():
        raise ReverseDNSError("Write an internationalised name in its xn-- (punycode) form.")
    name = name.removesuffix(".")
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2:
        raise ReverseDNSError(f"{value!r} is not a fully qualified host name (e.g. mail.example.com).")
    for label in labels:
        if not _LABEL.match(label):
            raise ReverseDNSError(
                f"{value!r} is not a valid host name: each label is 1-63 letters, digits or hyphens, "
                "not starting or ending with a hyphen."
            )
    if labels[-1].isdigit():
        raise ReverseDNSError(f"{value!r} is not a host name (the last label is a number).")
    return name + "."


def default_zone(prefix: str) -> str:
    """The smallest octet (v4) or nibble (v6) aligned reverse zone holding the whole prefix."""
    network = ipaddress.ip_network(prefix)
    labels = network.network_address.reverse_pointer.split(".")
    if network.version == 4:
        keep = max(network.prefixlen // 8, 1)
        return ".".join(labels[4 - keep :]) + "."
    keep = max(network.prefixlen // 4, 1)
    return ".".join(labels[32 - keep :]) + "."


def check_zone(zone: str, prefix: str) -> str:
    """The operator's zone for ``prefix`` as an absolute name; ReverseDNSError if it does not hold it all."""
    network = ipaddress.ip_network(prefix)
    name = (zone or "").strip().lower().removesuffix(".") + "."
    suffix = "in-addr.arpa." if network.version == 4 else "ip6.arpa."
    first = network.network_address.reverse_pointer + "."
    last = network.broadcast_address.reverse_pointer + "."
    if not name.endswith(suffix) or not all(owner == name or owner.endswith("." + name) for owner in (first, last)):
        raise ReverseDNSError(f"Zone {name} does not hold every address of {network} (try {default_zone(prefix)}).")
    return name


def default_name(template: str, *, address: str, vm_name: str, vm_id: int, project: str) -> str:
    """The operator's default PTR for a new VM's address; "" for none. Raises ReverseDNSError."""
    if not template:
        return ""
    dashed = address.replace(".", "-").replace(":", "-")
    try:
        value = template.format(dashed=dashed, vm=vm_name, id=vm_id, project=project)
    except (KeyError, IndexError, ValueError) as exc:
        raise ReverseDNSError(f"REVERSE_DNS_DEFAULT_PTR {template!r} is not a valid template ({exc}).") from None
    return hostname(value)


def _resolver(servers: list[str], timeout: float) -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=not servers)
    if servers:
        nameservers = []
        for server in servers:
            host, port = server, 53
            if server.count(":") == 1:  # v4:port
                host, port = server.split(":")[0], int(server.split(":")[1])
            elif server.startswith("[") and "]:" in server:  # [v6]:port
                host, port = server[1:].split("]:")[0], int(server.rsplit(":", 1)[1])
            nameservers.append(dns.nameserver.Do53Nameserver(host, port))
        resolver.nameservers = nameservers
    resolver.lifetime = timeout
    return resolver


def forward_confirm(name: str, address: str, *, servers: list[str], timeout: float = 3.0) -> None:
    """Raise ReverseDNSError unless ``name`` resolves (A or AAAA) to ``address``."""
    parsed = ipaddress.ip_address(address)
    rdtype = "A" if parsed.version == 4 else "AAAA"
    try:
        answer = _resolver(servers, timeout).resolve(name, rdtype, search=False)
        found = {ipaddress.ip_address(item.address) for item in answer}
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        found = set()
    except dns.exception.DNSException as exc:
        raise ReverseDNSError(f"Could not look up {name} to check it ({exc.__class__.__name__}); try again.") from None
    if parsed not in found:
        shown = ", ".join(sorted(str(item) for item in found)) or "nothing"
        raise ReverseDNSError(
            f"{name} must resolve to {parsed} ({rdtype} record) before it can be its reverse name; "
            f"it resolves to {shown}."
        )
