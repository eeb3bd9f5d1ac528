"""Invariants checked after a chaos run (and usable after any run of the engine).

Each check is a function ``check(ctx) -> Check`` registered with ``@invariant``;
a check whose subsystem is not installed returns ``Check.skipped(...)`` so the
list can name checks for apps that land later (billing) without failing. Every
violation names the offending ids.

``ctx`` is a :class:`Context`: the simulator's state file, the hypervisor, and
what the API clients saw (``ledger``). Run them with :func:`run_all` after the
drain and one reconciliation pass, with Django set up on the run's database.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import Count, F, Max, Sum

REGISTRY: list[tuple[str, Callable]] = []
MAX_SHOWN = 25


@dataclass
class Check:
    name: str
    ok: bool
    summary: str
    offenders: list[str] = field(default_factory=list)
    skipped: bool = False

    @classmethod
    def skipped_because(cls, name: str, why: str) -> Check:
        return cls(name=name, ok=True, summary=f"skipped: {why}", skipped=True)

    def lines(self) -> list[str]:
        status = "SKIP" if self.skipped else ("PASS" if self.ok else "FAIL")
        out = [f"[{status}] {self.name}: {self.summary}"]
        out += [f"       - {offender}" for offender in self.offenders[:MAX_SHOWN]]
        if len(self.offenders) > MAX_SHOWN:
            out.append(f"       ... and {len(self.offenders) - MAX_SHOWN} more")
        return out


@dataclass
class Context:
    state_path: str
    hypervisor_id: int
    ledger: object | None = None  # bench.chaos.driver.Ledger
    # The longest one attempt may take to be noticed and retried (lease, reaper, relay, backoff),
    # and extra time allowed for outages; None skips the time-bound check.
    attempt_seconds: float | None = None
    slack_seconds: float = 0.0


def invariant(name: str):
    def register(func):
        REGISTRY.append((name, func))
        return func

    return register


def run_all(ctx: Context, only: list[str] | None = None) -> list[Check]:
    results = []
    for name, func in REGISTRY:
        if only and name not in only:
            continue
        try:
            results.append(func(ctx))
        except Exception as exc:  # a crashing check is a failed check, with the reason
            results.append(Check(name=name, ok=False, summary=f"the check itself raised {type(exc).__name__}: {exc}"))
    return results


def _store(ctx: Context):
    from workers.drivers.simulator import store_for

    return store_for(ctx.state_path)


# -- operations ----------------------------------------------------------------------------------------


@invariant("every operation reached a final state")
def operations_final(ctx: Context) -> Check:
    from compute.choices import FINAL_OPERATION_STATES
    from compute.models import Operation

    name = "every operation reached a final state"
    offenders = [
        f"operation {op.id} ({op.action} of vm {op.vm_id}) is {op.state}, attempts {op.attempts}, "
        f"lease_until {op.lease_until}, next_attempt_at {op.next_attempt_at}, {op.progress_message!r}"
        for op in Operation.objects.exclude(state__in=FINAL_OPERATION_STATES).order_by("id")
    ]
    total = Operation.objects.count()
    if ctx.ledger is not None:
        seen = set(ctx.ledger.ops)
        stored = set(Operation.objects.filter(pk__in=seen).values_list("pk", flat=True))
        offenders += [
            f"operation {op_id} was accepted by the API (202) but is not in the database"
            for op_id in sorted(seen - stored)
        ]
        states = dict(Operation.objects.filter(pk__in=seen).values_list("pk", "state"))
        for op_id, record in sorted(ctx.ledger.ops.items()):
            if record.final_state and states.get(op_id) and states[op_id] != record.final_state:
                offenders.append(
                    f"operation {op_id}: the API said {record.final_state}, the database now says {states[op_id]}"
                )
    by_state = Counter(Operation.objects.values_list("state", flat=True))
    summary = f"{total} operations: " + ", ".join(f"{n} {state}" for state, n in sorted(by_state.items()))
    return Check(name=name, ok=not offenders, summary=summary, offenders=offenders)


@invariant("no operation outlived its time bound")
def operations_bounded(ctx: Context) -> Check:
    """Accepted to final within max_attempts x (lease + reaper + relay + backoff) + slack:
    anything slower was forgotten somewhere (a lost message nobody re-published)."""
    from compute.models import Operation

    name = "no operation outlived its time bound"
    if ctx.attempt_seconds is None:
        return Check.skipped_because(name, "no engine timings given")
    offenders, longest = [], (0.0, None)
    for op in Operation.objects.filter(finished_at__isnull=False).only(
        "id", "action", "vm_id", "attempts", "max_attempts", "created_at", "finished_at"
    ):
        took = (op.finished_at - op.created_at).total_seconds()
        bound = op.max_attempts * ctx.attempt_seconds + ctx.slack_seconds
        longest = max(longest, (took, op.pk))
        if took > bound:
            offenders.append(
                f"operation {op.pk} ({op.action} of vm {op.vm_id}) took {took:.0f} s, bound {bound:.0f} s, "
                f"{op.attempts} attempts"
            )
    summary = f"longest {longest[0]:.0f} s (operation {longest[1]}); bound {ctx.attempt_seconds:.0f} s per attempt"
    return Check(name, not offenders, summary + f" + {ctx.slack_seconds:.0f} s", offenders)


@invariant("no VM left busy or building")
def vms_idle(ctx: Context) -> Check:
    from compute.choices import ACTIVE_OPERATION_STATES, VMStatus
    from compute.models import Operation, VirtualMachine

    active = set(Operation.objects.filter(state__in=ACTIVE_OPERATION_STATES).values_list("vm_id", flat=True))
    offenders = []
    for vm in VirtualMachine.objects.filter(hypervisor_id=ctx.hypervisor_id).order_by("id"):
        if vm.task_state and vm.pk not in active:
            offenders.append(f"vm {vm.pk} ({vm.name}) has task_state={vm.task_state} but no active operation")
        elif vm.task_state:
            offenders.append(f"vm {vm.pk} ({vm.name}) is still busy ({vm.task_state})")
        elif vm.status == VMStatus.BUILDING:
            offenders.append(f"vm {vm.pk} ({vm.name}) is still building with no operation")
    count = VirtualMachine.objects.filter(hypervisor_id=ctx.hypervisor_id).count()
    return Check("no VM left busy or building", not offenders, f"{count} VMs checked", offenders)


# -- hypervisor -------------------------------------------------------------------------------------------


@invariant("no VM created twice on the hypervisor")
def no_double_create(ctx: Context) -> Check:
    from compute.models import Operation

    counts = _store(ctx).create_counts()
    doubled = {key: n for key, n in counts.items() if n != 1}
    ops = dict(Operation.objects.filter(idempotency_key__in=list(doubled)).values_list("idempotency_key", "id"))
    offenders = [
        f"idempotency key {key} (operation {ops.get(_uuid(key), '?')}) created {n} guests"
        for key, n in sorted(doubled.items())
    ]
    creates = sum(counts.values())
    return Check(
        "no VM created twice on the hypervisor",
        not offenders,
        f"{creates} guests created for {len(counts)} idempotency keys",
        offenders,
    )


def _uuid(key):
    import uuid

    try:
        return uuid.UUID(str(key))
    except ValueError:
        return key


@invariant("database and hypervisor agree after reconciliation")
def db_matches_hypervisor(ctx: Context) -> Check:
    from compute.choices import Action, OperationState, VMStatus
    from compute.models import Hypervisor, Operation, VirtualMachine

    name = "database and hypervisor agree after reconciliation"
    guests = {row["backend_id"]: dict(row) for row in _store(ctx).guests()}
    by_key = defaultdict(list)
    for guest in guests.values():
        by_key[guest["idempotency_key"]].append(guest["backend_id"])
    create_key = {
        vm_id: str(key)
        for vm_id, key in Operation.objects.filter(hypervisor_id=ctx.hypervisor_id, action=Action.CREATE)
        .order_by("created_at")
        .values_list("vm_id", "idempotency_key")
    }
    expected_power = {VMStatus.ACTIVE: "running", VMStatus.STOPPED: "stopped"}
    offenders, matched = [], set()
    for vm in VirtualMachine.objects.filter(hypervisor_id=ctx.hypervisor_id).order_by("id"):
        keyed = by_key.get(create_key.get(vm.pk), [])
        if vm.status == VMStatus.DELETED:
            leaked = ([vm.backend_id] if vm.backend_id in guests else []) + [b for b in keyed if b != vm.backend_id]
            if leaked:
                offenders.append(f"vm {vm.pk} ({vm.name}) is deleted but its guest {', '.join(leaked)} still exists")
            matched.update(leaked)
            continue
        if not vm.backend_id:
            if keyed:
                offenders.append(f"vm {vm.pk} ({vm.name}) has no backend_id but guest {keyed} carries its create key")
            elif vm.status != VMStatus.ERROR:
                offenders.append(f"vm {vm.pk} ({vm.name}) is {vm.status} with no guest and no backend_id")
            continue
        guest = guests.get(vm.backend_id)
        matched.add(vm.backend_id)
        if guest is None:
            offenders.append(f"vm {vm.pk} ({vm.name}) is {vm.status} but guest {vm.backend_id} does not exist")
            continue
        if vm.power_state != guest["power_state"]:
            offenders.append(
                f"vm {vm.pk} ({vm.name}): power_state {vm.power_state} in the database, "
                f"{guest['power_state']} on the hypervisor"
            )
        elif vm.status in expected_power and expected_power[vm.status] != guest["power_state"]:
            offenders.append(f"vm {vm.pk} ({vm.name}): status {vm.status} but the guest is {guest['power_state']}")
    failed_keys = {
        str(key)
        for key in Operation.objects.filter(
            hypervisor_id=ctx.hypervisor_id, action=Action.CREATE, state=OperationState.FAILED
        ).values_list("idempotency_key", flat=True)
    }
    reported = set((Hypervisor.objects.get(pk=ctx.hypervisor_id).drift or {}).get("unknown", []))
    unknown_allowed = 0
    for backend_id in sorted(set(guests) - matched):
        key = guests[backend_id]["idempotency_key"]
        if key in failed_keys and backend_id in reported:
            unknown_allowed += 1
            continue
        why = "not reported as drift" if key in failed_keys else "no VM knows it"
        offenders.append(f"unknown guest {backend_id} (key {key}) on the hypervisor: {why}")
    summary = f"{len(guests)} guests on the hypervisor, {len(matched)} matched to VMs"
    if unknown_allowed:
        summary += f", {unknown_allowed} left by failed creates and reported as drift"
    return Check(name, not offenders, summary, offenders)


# -- bookkeeping --------------------------------------------------------------------------------------------


@invariant("quota usage matches the VMs holding it")
def quota_matches(ctx: Context) -> Check:
    from compute.choices import RequestStatus, VMStatus
    from compute.models import ProjectQuota, VirtualMachine, VMRequest

    offenders = []
    held = Counter(VirtualMachine.objects.filter(quota_held=True).values_list("project_id", flat=True))
    pending = Counter(VMRequest.objects.filter(status=RequestStatus.PENDING).values_list("project_id", flat=True))
    for quota in ProjectQuota.objects.order_by("project_id"):
        expected = held[quota.project_id] + pending[quota.project_id]
        if quota.used_vms != expected:
            offenders.append(
                f"project {quota.project_id}: used_vms {quota.used_vms}, but {held[quota.project_id]} VMs hold quota "
                f"and {pending[quota.project_id]} requests are pending"
            )
    offenders += [
        f"vm {pk} is deleted but still holds quota"
        for pk in VirtualMachine.objects.filter(status=VMStatus.DELETED, quota_held=True).values_list("pk", flat=True)
    ]
    return Check(
        "quota usage matches the VMs holding it", not offenders, f"{ProjectQuota.objects.count()} quotas", offenders
    )


@invariant("each VM's timeline ends in its current status")
def timeline_matches(ctx: Context) -> Check:
    """Billing meters from VMStatusEvent: the last event must say what the VM row says."""
    from compute.models import VirtualMachine, VMStatusEvent

    last_ids = VMStatusEvent.objects.values("vm_id").annotate(last=Max("id")).values_list("last", flat=True)
    last = dict(VMStatusEvent.objects.filter(id__in=list(last_ids)).values_list("vm_id", "status"))
    offenders = []
    for vm_id, status in VirtualMachine.objects.filter(hypervisor_id=ctx.hypervisor_id).values_list("id", "status"):
        if last.get(vm_id) != status:
            offenders.append(f"vm {vm_id}: status {status}, last timeline event {last.get(vm_id)}")
    return Check("each VM's timeline ends in its current status", not offenders, f"{len(last)} timelines", offenders)


@invariant("snapshots and plans match the hypervisor")
def day2_matches(ctx: Context) -> Check:
    """No snapshot lost from the records (or left behind on the hypervisor), none still in flight,
    and every live VM runs, on the hypervisor, the sizes of the plan it is billed for."""
    from compute.choices import SnapshotState, VMStatus
    from compute.models import Snapshot, VirtualMachine

    db = _store(ctx).read()
    on_hv: dict[str, set[str]] = defaultdict(set)
    for row in db.execute("SELECT backend_id, ref FROM snapshots"):
        on_hv[row["backend_id"]].add(row["ref"])
    sizes = {
        row["backend_id"]: (row["vcpus"], row["memory_mib"], row["disk_gib"])
        for row in db.execute("SELECT * FROM guests")
    }
    offenders = []
    vms = VirtualMachine.objects.filter(hypervisor_id=ctx.hypervisor_id).exclude(status=VMStatus.DELETED)
    vms = vms.exclude(backend_id="").select_related("plan")
    rows: dict[int, set[str]] = defaultdict(set)
    for vm_id, ref, state in Snapshot.objects.filter(vm__in=vms).values_list("vm_id", "backend_ref", "state"):
        if state in (SnapshotState.CREATING, SnapshotState.DELETING):
            offenders.append(f"vm {vm_id}: snapshot {ref} still {state}")
        if state == SnapshotState.AVAILABLE:
            rows[vm_id].add(ref)
    for vm in vms:
        if rows[vm.pk] != on_hv.get(vm.backend_id, set()):
            offenders.append(
                f"vm {vm.pk}: records {sorted(rows[vm.pk])}, hypervisor {sorted(on_hv.get(vm.backend_id, ()))}"
            )
        plan = (vm.plan.vcpus, vm.plan.memory_mib, vm.plan.disk_gib)
        reported = sizes.get(vm.backend_id)
        # (a guest that reports no sizes, e.g. one added behind our back, has nothing to compare)
        if reported is not None and any(value is not None for value in reported) and reported != plan:
            offenders.append(
                f"vm {vm.pk}: billed for plan {vm.plan.name} {plan}, hypervisor runs {sizes[vm.backend_id]}"
            )
    summary = f"{sum(len(refs) for refs in rows.values())} snapshots on {vms.count()} live VMs"
    return Check("snapshots and plans match the hypervisor", not offenders, summary, offenders)


# -- audit ------------------------------------------------------------------------------------------------------


@invariant("the audit chain verifies")
def audit_chain(ctx: Context) -> Check:
    name = "the audit chain verifies"
    try:
        from audit.selectors import chain_verify
    except ImportError:
        return _minimal_chain(name)
    report = chain_verify()
    if report.ok:
        return Check(name, True, f"{report.checked} events verified (audit.selectors.chain_verify)")
    return Check(name, False, f"broken after {report.checked} events", [f"event {report.broken_id}: {report.reason}"])


def _minimal_chain(name: str) -> Check:
    """Without audit_verify: each event's prev_hash is the hash of the event before it."""
    from audit.models import AuditEvent

    previous, offenders, count = None, [], 0
    for pk, prev_hash, digest in AuditEvent.objects.order_by("id").values_list("id", "prev_hash", "hash").iterator():
        if previous is not None and prev_hash != previous:
            offenders.append(f"event {pk}: prev_hash does not match the previous event's hash")
        previous, count = digest, count + 1
    return Check(name, not offenders, f"{count} events linked (prev_hash only)", offenders)


# -- billing (switched on when billing is installed) ----------------------------------------------------------------


def _billing_models():
    try:
        from billing import models
    except ImportError:
        return None
    return models if hasattr(models, "LedgerEntry") and hasattr(models, "Wallet") else None


@invariant("the wallet ledger balances")
def ledger_balances(ctx: Context) -> Check:
    """Each wallet's balance is the sum of its entries, and each entry's balance_after the running sum."""
    name = "the wallet ledger balances"
    models = _billing_models()
    if models is None:
        return Check.skipped_because(name, "billing (wallet ledger) not installed")
    offenders, running, entries = [], defaultdict(int), 0
    for project_id, pk, amount, after in models.LedgerEntry.objects.order_by("project_id", "id").values_list(
        "project_id", "id", "amount", "balance_after"
    ):
        running[project_id] += amount
        entries += 1
        if after != running[project_id]:
            offenders.append(
                f"ledger entry {pk} (project {project_id}): balance_after {after}, sum {running[project_id]}"
            )
    for wallet in models.Wallet.objects.order_by("project_id"):
        if wallet.balance != running.get(wallet.project_id, 0):
            offenders.append(
                f"wallet of project {wallet.project_id}: balance {wallet.balance}, "
                f"entries sum to {running.get(wallet.project_id, 0)}"
            )
    return Check(name, not offenders, f"{models.Wallet.objects.count()} wallets, {entries} entries", offenders)


@invariant("no VM-hour charged twice")
def no_double_charge(ctx: Context) -> Check:
    """One usage record per VM, hour and plan (a resize splits an hour between two plans), at
    most an hour of seconds in a VM's hour over its plans, and each charge's ledger debit equal
    to its total."""
    name = "no VM-hour charged twice"
    models = _billing_models()
    if models is None or not hasattr(models, "UsageRecord"):
        return Check.skipped_because(name, "billing (metering) not installed")
    doubled = (
        models.UsageRecord.objects.values("vm_id", "hour_start", "plan_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .order_by()
    )
    offenders = [
        f"vm {row['vm_id']} hour {row['hour_start']:%Y-%m-%d %H:00} plan {row['plan_id']} metered {row['n']} times"
        for row in doubled
    ]
    overfull = (
        models.UsageRecord.objects.values("vm_id", "hour_start")
        .annotate(seconds=Sum(F("running_seconds") + F("stopped_seconds")))
        .filter(seconds__gt=3600)
        .order_by("vm_id", "hour_start")
    )
    for row in overfull:
        offenders.append(f"vm {row['vm_id']} hour {row['hour_start']:%Y-%m-%d %H:00} counts {row['seconds']} s")
    for charge in models.UsageCharge.objects.filter(entry__isnull=False).select_related("entry"):
        if charge.entry.amount != -charge.total:
            offenders.append(f"usage charge {charge.pk}: total {charge.total}, ledger debit {charge.entry.amount}")
    records = models.UsageRecord.objects.count()
    charges = models.UsageCharge.objects.count()
    return Check(name, not offenders, f"{records} usage records, {charges} charges", offenders)


from . import invariants_backups  # noqa: E402, F401  (registers "no backup lost from the records")
