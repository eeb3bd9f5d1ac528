"""The chaos run's backup invariant (registered into bench/chaos/invariants.py's list on import)."""

from __future__ import annotations

from collections import defaultdict

from .invariants import Check, Context, _store, invariant

NAME = "no backup lost from the records"


@invariant(NAME)
def backups_match(ctx: Context) -> Check:
    """Every backup in the simulator's backup storage has a row that says it is there (available),
    every available row has its copy there, and none is still being taken or deleted. Backups
    outlive their VM, so deleted VMs count too."""
    from compute.choices import BackupState
    from compute.models import Backup, VirtualMachine

    on_hv: dict[str, set[str]] = defaultdict(set)
    for row in _store(ctx).read().execute("SELECT backend_id, ref FROM backups"):
        on_hv[row["backend_id"]].add(row["ref"])
    vms = dict(
        VirtualMachine.objects.filter(hypervisor_id=ctx.hypervisor_id)
        .exclude(backend_id="")
        .values_list("backend_id", "pk")
    )
    rows: dict[str, set[str]] = defaultdict(set)
    offenders = []
    backups = Backup.objects.filter(vm__hypervisor_id=ctx.hypervisor_id).exclude(vm__backend_id="")
    for backend_id, ref, state in backups.values_list("vm__backend_id", "backend_ref", "state"):
        if state in (BackupState.CREATING, BackupState.DELETING):
            offenders.append(f"vm {vms.get(backend_id)}: backup {ref} still {state}")
        if state == BackupState.AVAILABLE:
            rows[backend_id].add(ref)
    for backend_id in sorted(set(on_hv) | set(rows)):
        if rows[backend_id] != on_hv.get(backend_id, set()):
            who = f"vm {vms[backend_id]}" if backend_id in vms else f"unknown guest {backend_id}"
            offenders.append(f"{who}: records {sorted(rows[backend_id])}, backup storage {sorted(on_hv[backend_id])}")
    summary = f"{sum(len(refs) for refs in on_hv.values())} backups in storage"
    return Check(NAME, not offenders, summary, offenders)
