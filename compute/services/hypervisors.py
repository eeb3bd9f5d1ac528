"""Operators' writes on the hypervisor registry: maintenance on and off.

While a hypervisor is in maintenance its operations stay pending (the claim
defers them) and reconciliation skips it; once it is taken out, the relay
publishes the waiting operations again.
"""

from django.db import transaction

import audit
from audit.choices import Action
from compute.models import Hypervisor


@transaction.atomic
def hypervisor_set_maintenance(*, hypervisor: Hypervisor, on: bool, actor, request=None) -> bool:
    """Put ``hypervisor`` into maintenance (``on=True``) or take it out, and record who did.

    Guarded write: only a hypervisor not already in the wanted state changes,
    and only a change is audited (``hypervisor.maintenance.entered`` / ``.left``).
    Returns whether it changed.
    """
    changed = Hypervisor.objects.filter(pk=hypervisor.pk, maintenance=not on).update(maintenance=on)
    hypervisor.maintenance = on
    if changed:
        audit.record(
            actor=actor,
            action=Action.HYPERVISOR_MAINTENANCE_ENTERED if on else Action.HYPERVISOR_MAINTENANCE_LEFT,
            target=hypervisor,
            details={"hypervisor": hypervisor.name, "queue": hypervisor.queue},
            request=request,
        )
    return bool(changed)
