"""Operation lifecycle: every write is a guarded state change.

``pending`` → claim (compare-and-swap, new ``claim_token``) → ``running`` →
``succeeded`` | ``failed``; a transient error sends a running operation back
to ``pending`` with ``next_attempt_at`` in the future. Every write after the
claim is guarded by ``state=running, claim_token=<token>``: a worker whose
claim was taken away (lease expired, reaped) finds zero rows and stops.
Workers call these services; they never write operation rows themselves.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

import audit
from compute import dispatch
from compute.choices import (
    CAPACITY_RECHECK_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    MAINTENANCE_RECHECK_SECONDS,
    Action,
    OperationState,
)
from compute.models import Hypervisor, Operation, TenantBinding, VirtualMachine
from compute.retry import backoff_seconds
from controlplane.bulk import insert_unless_conflict
from controlplane.compiled import CompiledQuery
from controlplane.errors import Conflict

from .day2_writeback import day2_after_failure, day2_after_success
from .writeback import status_after_failure, status_after_success, vm_quota_release, vm_record_status


def _engine(name: str):
    return settings.ENGINE[name]


def _audit_state(op: Operation, actor: str, state: str, **details) -> None:
    if op.action == Action.PROVISION:
        action = "operation.state_changed"
    else:
        action = {
            OperationState.SUCCEEDED: f"vm.{op.action}.succeeded",
            OperationState.FAILED: f"vm.{op.action}.failed",
        }.get(state, "operation.state_changed")
    details = {
        "operation": op.pk,
        "action": op.action,
        "state": state,
        "task_ref": op.task_ref,
        "worker": op.worker,
        "attempt": op.attempts,
        **details,
    }
    audit.record(actor=actor, action=action, target=op.vm if op.vm_id else op, project=op.project_id, details=details)


# -- creation -------------------------------------------------------------------


def _new_operation(*, vm, action, requested_by, project, hypervisor, params, now) -> Operation:
    """An unsaved pending operation, due now (``operation_create`` and ``operation_create_many``)."""
    return Operation(
        vm=vm,
        project=project or vm.project,
        hypervisor=hypervisor or vm.hypervisor,
        action=action,
        params=params or {},
        requested_by=requested_by,
        max_attempts=DEFAULT_MAX_ATTEMPTS[action],
        next_attempt_at=now,
        published_at=now,
        previous_status=vm.status if vm else "",
    )


def operation_create(
    *, vm: VirtualMachine | None, action: str, requested_by=None, project=None, hypervisor=None, params=None
) -> Operation:
    """Create a pending operation and publish it when the transaction commits.

    Must run inside the caller's transaction (which set the VM's task_state).
    The partial unique constraints make a second active operation on the
    same VM (or a second active provision of a project on a hypervisor)
    impossible; that surfaces as Conflict (HTTP 409). The INSERT is ``ON
    CONFLICT DO NOTHING`` (controlplane/bulk.py): a conflict leaves the
    transaction usable, so no savepoint is needed around it (issue 25).
    """
    op = _new_operation(
        vm=vm,
        action=action,
        requested_by=requested_by,
        project=project,
        hypervisor=hypervisor,
        params=params,
        now=timezone.now(),
    )
    if not insert_unless_conflict(op):
        target = vm.name if vm else "this project"
        raise Conflict(f"Another operation is already in progress on {target}; wait for it to finish.") from None
    dispatch.publish_execute(operation_id=op.pk, queue=op.hypervisor.queue)
    return op


def operation_create_many(*, vms: list[VirtualMachine], action: str, requested_by=None) -> list[Operation]:
    """``operation_create`` for VMs inserted in the caller's transaction (a batch's creates):
    one INSERT, and the messages published together when the transaction commits.

    No savepoint per row: a VM created in this transaction has no active operation, so the
    one-active-operation constraint cannot fire (if it did, the whole transaction fails)."""
    now = timezone.now()
    ops = Operation.objects.bulk_create(
        _new_operation(
            vm=vm, action=action, requested_by=requested_by, project=None, hypervisor=None, params=None, now=now
        )
        for vm in vms
    )
    dispatch.publish_execute_many(operations=[(op.pk, op.hypervisor.queue) for op in ops])
    return ops


# -- claim ------------------------------------------------------------------------


@dataclass
class Claim:
    operation: Operation
    token: str


def _claim_candidate(operation_id: int, due_by):
    """The pending operation, due by ``due_by``, with what the worker needs (its VM, plan,
    image, projects) and its hypervisor, whose row this locks: one statement."""
    # NO KEY UPDATE: serialises claims on this hypervisor without blocking the KEY SHARE
    # lock that inserting an Operation (foreign key to it) takes elsewhere.
    return (
        Operation.objects.select_related("vm", "vm__plan", "vm__image", "vm__project", "hypervisor", "project")
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=due_by), pk=operation_id)
        .filter(state=OperationState.PENDING)
        .select_for_update(no_key=True, of=("hypervisor",))
    )


_CLAIM_CANDIDATE = CompiledQuery(_claim_candidate, probe=(0, datetime(2000, 1, 1, tzinfo=UTC)))


def _running_on(hypervisor: Hypervisor):
    """The hypervisor's running operations, counted against its ``max_concurrent_operations``."""
    return Operation.objects.filter(hypervisor_id=hypervisor.pk, state=OperationState.RUNNING)


def _vm_locked(vm_id: int):
    return VirtualMachine.objects.filter(pk=vm_id).select_for_update(no_key=True, of=("self",))


_VM_LOCKED = CompiledQuery(_vm_locked, probe=(0,))


def vm_lock_for_writeback(vm_id: int) -> VirtualMachine:
    """The VM's row, locked for the write-back of an operation's result (no key update: an
    insert referencing the VM elsewhere is not blocked)."""
    vm = _VM_LOCKED.first(vm_id)
    if vm is None:
        raise VirtualMachine.DoesNotExist(f"No VM {vm_id}.")
    return vm


@transaction.atomic
def operation_claim(*, operation_id: int, worker: str) -> Claim | None:
    """Take a pending operation for this worker, or return None.

    None when: it is gone, not pending, not due yet (an early duplicate
    message), or its hypervisor is in maintenance / at its concurrency limit
    (then it stays pending and is re-published later).

    Two statements when it is claimed: the operation with its hypervisor's row lock, then
    the compare-and-swap that also counts the hypervisor's running operations. That count
    runs in a statement begun after the lock was granted, so it sees every claim committed
    by the lock's earlier holders (READ COMMITTED takes a snapshot per statement).
    """
    now = timezone.now()
    op = _CLAIM_CANDIDATE.first(operation_id, now + timedelta(seconds=1))
    if op is None:
        return None
    hypervisor = op.hypervisor
    if hypervisor.maintenance:
        Operation.objects.filter(pk=op.pk, state=OperationState.PENDING).update(
            next_attempt_at=now + timedelta(seconds=MAINTENANCE_RECHECK_SECONDS),
            progress_message=f"Waiting: hypervisor {hypervisor.name} is in maintenance.",
        )
        return None
    token = uuid.uuid4()
    lease_until = now + timedelta(seconds=_engine("LEASE_SECONDS"))
    running = _running_on(hypervisor).order_by().values("hypervisor_id").annotate(n=Count("pk")).values("n")
    claimed = (
        Operation.objects.filter(pk=op.pk, state=OperationState.PENDING)
        .alias(running=Coalesce(Subquery(running), 0))
        .filter(running__lt=hypervisor.max_concurrent_operations)
        .update(
            state=OperationState.RUNNING,
            claim_token=token,
            lease_until=lease_until,
            worker=worker[:200],
            attempts=F("attempts") + 1,
            poll_errors=0,
            started_at=Coalesce(F("started_at"), now),
            progress_message="",
        )
    )
    if not claimed:
        _claim_refused(op, hypervisor, now)
        return None
    op.state, op.claim_token, op.lease_until, op.worker = OperationState.RUNNING, token, lease_until, worker[:200]
    op.attempts, op.poll_errors, op.started_at = op.attempts + 1, 0, op.started_at or now
    op.progress_message = ""
    # No audit event for pending → running: nobody reads it, and every append serialises on
    # the audit chain's lock. The worker and attempt are on the row and in the final event.
    return Claim(operation=op, token=str(token))


def _claim_refused(op: Operation, hypervisor: Hypervisor, now) -> None:
    """The compare-and-swap found nothing: another worker took it, or the hypervisor is at its
    limit of concurrent operations (then it waits, and is published again)."""
    if _running_on(hypervisor).count() < hypervisor.max_concurrent_operations:
        return
    waiting = Operation.objects.filter(pk=op.pk, state=OperationState.PENDING).update(
        next_attempt_at=now + timedelta(seconds=CAPACITY_RECHECK_SECONDS),
        progress_message=f"Queued: {hypervisor.name} is at its limit of concurrent operations.",
    )
    if waiting:
        dispatch.publish_execute(operation_id=op.pk, queue=hypervisor.queue, countdown=CAPACITY_RECHECK_SECONDS)


def _guarded(op: Operation, token: str):
    return Operation.objects.filter(pk=op.pk, state=OperationState.RUNNING, claim_token=token)


def _lease() -> timedelta:
    return timedelta(seconds=_engine("LEASE_SECONDS"))


# -- progress -------------------------------------------------------------------------


@transaction.atomic
def operation_record_submitted(*, operation: Operation, token: str, task: dict) -> bool:
    """Store the hypervisor's handle; from now on a crash resumes by polling it."""
    now = timezone.now()
    updated = _guarded(operation, token).update(
        task_ref=str(task.get("ref", ""))[:255],
        task_data=task,
        submitted_at=now,
        lease_until=now + _lease(),
        progress=0,
    )
    if updated and operation.vm_id and task.get("backend_id"):
        VirtualMachine.objects.filter(pk=operation.vm_id, backend_id="").update(backend_id=task["backend_id"])
    if updated:
        operation.task_ref, operation.task_data = str(task.get("ref", ""))[:255], task
    return bool(updated)


def operation_record_progress(
    *, operation: Operation, token: str, progress: int | None, message: str = "", task: dict | None = None
) -> bool:
    """Extend the lease and store progress (and a replacement handle)."""
    fields = {"lease_until": timezone.now() + _lease(), "poll_errors": 0, "progress_message": message[:200]}
    if progress is not None:
        fields["progress"] = max(0, min(100, int(progress)))
    if task is not None:
        fields["task_data"] = task
        fields["task_ref"] = str(task.get("ref", ""))[:255]
    return bool(_guarded(operation, token).update(**fields))


def operation_record_poll_error(*, operation: Operation, token: str, message: str) -> int | None:
    """Count a transient poll error; returns the consecutive count (None if the claim is lost)."""
    updated = _guarded(operation, token).update(
        poll_errors=F("poll_errors") + 1,
        lease_until=timezone.now() + _lease(),
        progress_message=f"Hypervisor did not answer; retrying: {message}"[:200],
    )
    if not updated:
        return None
    return Operation.objects.values_list("poll_errors", flat=True).get(pk=operation.pk)


@transaction.atomic
def operation_retry_later(*, operation: Operation, token: str, code: str, message: str) -> float | None:
    """Give a running operation back to ``pending`` after a transient error.

    Returns the delay before the next attempt, or None if the claim was lost.
    The caller asks ``compute.retry.retry_verdict`` first (and fails it unless RETRY).
    """
    delay = backoff_seconds(operation.attempts)
    next_at = timezone.now() + timedelta(seconds=delay)
    updated = _guarded(operation, token).update(
        state=OperationState.PENDING,
        claim_token=None,
        lease_until=None,
        next_attempt_at=next_at,
        published_at=timezone.now(),
        error_code=code[:64],
        error_message=f"Attempt {operation.attempts} of {operation.max_attempts} failed: {message}",
        progress_message=f"Retrying at {next_at:%H:%M:%S} UTC.",
    )
    if not updated:
        return None
    _audit_state(
        operation, f"worker:{operation.worker}", OperationState.PENDING, error=message, retry_in=round(delay, 2)
    )
    dispatch.publish_execute(operation_id=operation.pk, queue=operation.hypervisor.queue, countdown=delay)
    return delay


# -- completion -------------------------------------------------------------------------


@transaction.atomic
def operation_succeed(
    *,
    operation: Operation,
    token: str,
    observed: dict | None,
    result: dict | None = None,
    submitted: dict | None = None,
) -> bool:
    """Finish a running operation and write the result back to the VM.

    ``observed`` is what the hypervisor reported after the action
    (backend_id, power_state, ip_addresses), or None when unknown/gone.
    ``submitted``: the hypervisor's handle, when it answered "done" to the submit and
    the handle is stored here instead of in an ``operation_record_submitted`` of its own.
    """
    now = timezone.now()
    handle = {}
    if submitted is not None:
        handle = {"task_ref": str(submitted.get("ref", ""))[:255], "task_data": submitted, "submitted_at": now}
        operation.task_ref, operation.task_data = handle["task_ref"], submitted
    updated = _guarded(operation, token).update(
        **handle,
        state=OperationState.SUCCEEDED,
        finished_at=now,
        progress=100,
        lease_until=None,
        error_code="",
        error_message="",
        progress_message="",
        result=result or observed or {},
    )
    if not updated:
        return False
    operation.state = OperationState.SUCCEEDED
    if operation.action == Action.PROVISION:
        TenantBinding.objects.update_or_create(
            project_id=operation.project_id,
            hypervisor_id=operation.hypervisor_id,
            defaults={"ready": True, "data": result or {}},
        )
    else:
        vm = vm_lock_for_writeback(operation.vm_id)
        status = status_after_success(
            action=operation.action, observed=observed, previous_status=operation.previous_status
        )
        vm_record_status(vm=vm, status=status, observed=observed, operation=operation, source="worker")
        day2_after_success(operation=operation, vm=vm, result=result)
    _audit_state(operation, f"worker:{operation.worker}", OperationState.SUCCEEDED, observed=observed)
    return True


@transaction.atomic
def operation_fail(
    *,
    operation: Operation,
    token: str | None,
    code: str,
    message: str,
    observed: dict | None = None,
    observed_known: bool = False,
    actor: str | None = None,
    result: dict | None = None,
) -> bool:
    """Fail an operation for good, leaving the VM in the state the hypervisor confirms.

    ``observed_known`` says whether ``observed`` is the hypervisor's answer
    (None then means the guest does not exist) or we could not ask. ``result``
    records what the engine did about it (``{"cleanup": {"removed": id}}``: a failed
    create's half-built guest was deleted; the VM then forgets that id).
    """
    now = timezone.now()
    base = Operation.objects.filter(pk=operation.pk)
    guard = (
        base.filter(state=OperationState.RUNNING, claim_token=token)
        if token
        else base.filter(state__in=[OperationState.RUNNING, OperationState.PENDING])
    )
    updated = guard.update(
        state=OperationState.FAILED,
        finished_at=now,
        lease_until=None,
        claim_token=None,
        error_code=code[:64],
        error_message=message,
        progress_message="",
        **({"result": result} if result is not None else {}),
    )
    if not updated:
        return False
    operation.state = OperationState.FAILED
    if operation.vm_id:
        vm = vm_lock_for_writeback(operation.vm_id)
        status = status_after_failure(
            action=operation.action,
            observed=observed,
            observed_known=observed_known,
            submitted=bool(operation.task_ref),
            previous_status=operation.previous_status,
        )
        vm_record_status(vm=vm, status=status, observed=observed, operation=operation, source="worker")
        if operation.action == Action.CREATE:
            vm_quota_release(vm=vm)  # a failed create holds nothing; an operator's retry reserves again
            if (result or {}).get("cleanup", {}).get("removed"):
                VirtualMachine.objects.filter(pk=vm.pk).update(backend_id="")
        day2_after_failure(operation=operation, vm=vm)
    elif operation.action == Action.PROVISION:
        TenantBinding.objects.filter(project_id=operation.project_id, hypervisor_id=operation.hypervisor_id).update(
            ready=False
        )
    _audit_state(operation, actor or f"worker:{operation.worker}", OperationState.FAILED, error=message, code=code)
    return True


# -- housekeeping (relay, reaper) ---------------------------------------------------------------


def _unlocked(queryset):
    """Lock these operation rows, skipping any another process holds: housekeeping never waits."""
    return queryset.select_for_update(skip_locked=True, no_key=True, of=("self",))


def operation_relay_pending(*, limit: int = 1000) -> int:
    """Re-publish pending operations that were due a while ago but nobody claimed.

    Covers a broker that was down at commit, a process that died between
    commit and publish, and lost countdown messages. Publishing twice is
    harmless: the claim is a compare-and-swap. Rows another process holds
    (a claim in progress) are skipped, not waited for.
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=_engine("RELAY_AFTER_SECONDS"))
    with transaction.atomic():
        stale = list(
            _unlocked(
                Operation.objects.filter(
                    state=OperationState.PENDING, next_attempt_at__lte=cutoff, hypervisor__maintenance=False
                )
            )
            .select_related("hypervisor")
            .order_by("next_attempt_at")[:limit]
        )
        Operation.objects.filter(pk__in=[op.pk for op in stale]).update(next_attempt_at=now, published_at=now)
    dispatch.publish_execute_many(operations=[(op.pk, op.hypervisor.queue) for op in stale], on_commit=False)
    return len(stale)


def operation_list_expired(*, limit: int = 500) -> list[Operation]:
    """Running operations whose lease passed: their worker died or hung."""
    return list(
        Operation.objects.filter(state=OperationState.RUNNING, lease_until__lt=timezone.now())
        .select_related("vm", "hypervisor")
        .order_by("lease_until")[:limit]
    )


@transaction.atomic
def operation_is_unlocked(*, operation: Operation) -> bool:
    """No other process holds this operation's row (a probe: the lock ends with it)."""
    return _unlocked(Operation.objects.filter(pk=operation.pk)).values_list("pk", flat=True).first() is not None


@transaction.atomic
def operation_requeue_expired(*, operation: Operation) -> bool:
    """Hand an expired running operation back to pending; the next claim resumes it
    from its stored handle (or re-submits, which drivers make idempotent). False, at
    once, when another process holds the row."""
    now = timezone.now()
    if not _unlocked(Operation.objects.filter(pk=operation.pk)).values_list("pk", flat=True).first():
        return False
    updated = Operation.objects.filter(
        pk=operation.pk, state=OperationState.RUNNING, claim_token=operation.claim_token, lease_until__lt=now
    ).update(
        state=OperationState.PENDING,
        claim_token=None,
        lease_until=None,
        next_attempt_at=now,
        published_at=now,
        progress_message=f"Worker {operation.worker} stopped answering; resuming.",
    )
    if updated:
        _audit_state(operation, "reaper", OperationState.PENDING, reason="lease expired", worker=operation.worker)
        dispatch.publish_execute(operation_id=operation.pk, queue=operation.hypervisor.queue)
    return bool(updated)
