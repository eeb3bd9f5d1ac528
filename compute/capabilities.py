"""What each hypervisor kind's driver can do, as compute sees it.

compute never imports workers, so the workers app fills this registry from the
drivers' declarations (``Driver.capabilities``, ``Driver.resize_live``) in its
``ready()``. Services, the API and the portal ask ``supports(kind, ...)`` and
``resize_needs_restart(kind, ...)``; never ``if kind == ...``. The names are the
values of ``workers.drivers.base.Capability`` (a test keeps them equal).
"""

from __future__ import annotations

from dataclasses import dataclass

SNAPSHOTS = "snapshots"
RESIZE = "resize"
REBUILD = "rebuild"
BACKUPS = "backups"


@dataclass(frozen=True)
class KindFacts:
    capabilities: frozenset[str]
    resize_live: frozenset[str]


_kinds: dict[str, KindFacts] = {}


def register(kind: str, *, capabilities: frozenset[str], resize_live: frozenset[str]) -> None:
    _kinds[kind] = KindFacts(frozenset(capabilities), frozenset(resize_live))


def supports(kind: str, capability: str) -> bool:
    facts = _kinds.get(kind)
    return bool(facts and capability in facts.capabilities)


def resize_needs_restart(kind: str, *, changed: set[str]) -> bool:
    """Whether changing these dimensions ("vcpus", "memory", "disk") restarts a running guest."""
    facts = _kinds.get(kind)
    live = facts.resize_live if facts else frozenset()
    return bool(set(changed) - live)
