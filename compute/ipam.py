"""Address arithmetic for IP pools (pure: no ORM). Services and selectors build on it.

An address is kept as its ``offset`` from the prefix's network address, so a /48 IPv6
pool is never enumerated: only taken offsets are ever read. Offsets are capped at
``MAX_OFFSET`` (2**62) so they fit a 64-bit column; that is more addresses than any pool
will hand out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

MAX_OFFSET = 2**62
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class PoolError(ValueError):
    """Bad pool definition or address; ``field`` names the offending input."""

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Layout:
    """One family of a pool: its prefix, the usable offset range and what to skip."""

    network: Network
    gateway: Address | None
    first: int
    last: int
    skip: tuple[tuple[int, int], ...]  # merged, sorted inclusive offset ranges never handed out

    @property
    def family(self) -> int:
        return self.network.version

    def address(self, offset: int) -> Address:
        return self.network.network_address + offset

    def offset(self, address: str, *, field: str = "address") -> int:
        try:
            parsed = ipaddress.ip_address(address.strip())
        except ValueError:
            raise PoolError(f"{address!r} is not an IP address.", field=field) from None
        if parsed not in self.network:
            raise PoolError(f"{parsed} is outside the pool's prefix {self.network}.", field=field)
        offset = int(parsed) - int(self.network.network_address)
        if not self.first <= offset <= self.last:
            raise PoolError(f"{parsed} is not a usable host address of {self.network}.", field=field)
        return offset

    def skipped(self, offset: int) -> int:
        """The first offset at or after ``offset`` that is not skipped."""
        for low, high in self.skip:
            if low <= offset <= high:
                offset = high + 1
        return offset

    def capacity(self) -> int:
        skipped = sum(min(high, self.last) - max(low, self.first) + 1 for low, high in self.skip if high >= self.first)
        return max(self.last - self.first + 1 - skipped, 0)

    def next_free(self, taken: Iterable[int]) -> int | None:
        """The lowest usable offset not in ``taken`` (ascending offsets); None when full."""
        return next(iter(self.free_offsets(taken, 1)), None)

    def free_offsets(self, taken: Iterable[int], count: int) -> list[int]:
        """The ``count`` lowest usable offsets not in ``taken`` (ascending offsets); fewer
        when the pool runs out. One pass over ``taken``, however many are wanted."""
        free = []
        candidate = self.skipped(self.first)
        taken = iter(taken)
        used = next(taken, None)
        while len(free) < count and candidate <= self.last:
            while used is not None and used < candidate:
                used = next(taken, None)
            if used != candidate:
                free.append(candidate)
            candidate = self.skipped(candidate + 1)
        return free


def parse_prefix(value: str, *, family: int, field: str) -> Network:
    try:
        network = ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as exc:
        raise PoolError(f"{value!r} is not a network prefix ({exc}).", field=field) from None
    if network.version != family:
        raise PoolError(f"{network} is not an IPv{family} prefix.", field=field)
    if (family == 4 and network.prefixlen > 30) or (family == 6 and network.prefixlen > 126):
        raise PoolError(f"{network} is too small to hold guests.", field=field)
    return network


def _range(text: str, network: Network, *, field: str) -> tuple[int, int]:
    base = int(network.network_address)
    try:
        if "/" in text:
            sub = ipaddress.ip_network(text.strip(), strict=True)
            low, high = sub.network_address, sub.broadcast_address
        else:
            start, _, end = text.partition("-")
            low = ipaddress.ip_address(start.strip())
            high = ipaddress.ip_address(end.strip()) if end else low
    except ValueError:
        raise PoolError(f"{text!r} is not an address, a range a-b, or a prefix.", field=field) from None
    if low.version != network.version:
        return (-1, -1)  # the other family's range: handled by that family's layout
    if low not in network or high not in network or high < low:
        raise PoolError(f"Excluded range {text!r} is not inside {network}.", field=field)
    return (int(low) - base, int(high) - base)


def layout(*, prefix: str, gateway: str, excluded: Iterable[str], family: int) -> Layout:
    """Check one family of a pool definition and describe it; raises PoolError."""
    field = f"ipv{family}_prefix"
    network = parse_prefix(prefix, family=family, field=field)
    first = 1
    last = min(network.num_addresses - (2 if family == 4 else 1), MAX_OFFSET)
    skip = [r for r in (_range(text, network, field="excluded_ranges") for text in excluded) if r[0] >= 0]
    gw = None
    if gateway.strip():
        try:
            gw = ipaddress.ip_address(gateway.strip())
        except ValueError:
            raise PoolError(f"{gateway!r} is not an IP address.", field=f"ipv{family}_gateway") from None
        if gw not in network or gw in (network.network_address, network.broadcast_address):
            raise PoolError(f"Gateway {gw} is not a host address of {network}.", field=f"ipv{family}_gateway")
        gw_offset = int(gw) - int(network.network_address)
        skip.append((gw_offset, gw_offset))
    merged: list[tuple[int, int]] = []
    for low, high in sorted(skip):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return Layout(network=network, gateway=gw, first=first, last=last, skip=tuple(merged))


def overlaps(a: str, b: str) -> bool:
    return ipaddress.ip_network(a).overlaps(ipaddress.ip_network(b))


def pool_layouts(pool) -> list[Layout]:
    """The families of a pool (an object with the IPPool fields), IPv4 first; raises PoolError."""
    result = []
    for family in (4, 6):
        prefix, gateway = getattr(pool, f"ipv{family}_prefix"), getattr(pool, f"ipv{family}_gateway")
        if prefix.strip():
            result.append(layout(prefix=prefix, gateway=gateway, excluded=pool.excluded_ranges, family=family))
    return result


def normalise_address(value: str, *, field: str = "address") -> str:
    """An address as stored (``str(ipaddress.ip_address(...))``); PoolError for anything else."""
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        raise PoolError(f"{str(value)[:60]!r} is not an IP address.", field=field) from None
