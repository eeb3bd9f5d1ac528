"""Placement: a hypervisor takes a VM only if the plan fits in its declared capacity."""

from __future__ import annotations

from controlplane.errors import Conflict

from ..models import Hypervisor, Plan
from ..selectors_capacity import RESOURCES, allocated_on


def hypervisor_capacity_check(*, hypervisor: Hypervisor, plan: Plan, lock: bool = False, count: int = 1) -> None:
    """Raise ``Conflict`` when the plan (``count`` VMs of it) does not fit. ``lock``: take the
    hypervisor's row lock first, so concurrent placements on one hypervisor are counted one
    after the other (inside a transaction). Callers take it before anything audits: the audit chain's lock comes last
    (a worker's claim holds the hypervisor's row and then audits)."""
    limits = {name: getattr(hypervisor, f"capacity_{name}") for name, _ in RESOURCES}
    if not any(limits.values()):
        return  # nothing declared: no check, and no lock taken
    if lock:
        Hypervisor.objects.select_for_update(no_key=True, of=("self",)).filter(pk=hypervisor.pk).first()
    allocated = allocated_on([hypervisor.pk]).get(hypervisor.pk, {})
    short = [
        f"{label}: {max(0, limits[name] - allocated.get(name, 0))} free, "
        f"{'the plan' if count == 1 else f'{count} VMs of the plan'} need{'s' if count == 1 else ''} "
        f"{count * getattr(plan, name)}"
        for name, label in RESOURCES
        if limits[name] and allocated.get(name, 0) + count * getattr(plan, name) > limits[name]
    ]
    if short:
        message = (
            f"{hypervisor.name} cannot fit the {plan.name} plan ({'; '.join(short)}). "
            "Choose another location or a smaller plan."
        )
        raise Conflict(message, code="hypervisor_full", fields={"hypervisor": [message]})
