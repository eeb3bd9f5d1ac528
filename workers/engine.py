"""The operation engine's worker side: claim, submit, poll, write back.

Tasks (workers/tasks.py) call these functions with ids; these call drivers
(pure, no Django), compute selectors (reads) and compute services (all database
writes, guarded by the claim token); whether to retry is compute/retry.py's call.
No function here sleeps on a hypervisor: after submitting, the next look is a
separate ``poll_operation`` task scheduled with a countdown, so a worker slot is
free while a clone takes minutes.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from compute import dispatch, selectors, services
from compute.choices import DEADLINE_SECONDS, DEFAULT_DEADLINE_SECONDS, DEFAULT_POLL_SECONDS, POLL_ERROR_LIMIT, Action
from compute.models import Hypervisor, Operation
from compute.retry import (
    Verdict,
    backoff_seconds,
    deadline_code,
    deadline_message,
    deadline_seconds,
    operation_is_overdue,
    retry_verdict,
)
from compute.services.writeback import desired_state_reached

from . import backups, day2
from .drivers.base import (
    Driver,
    DriverError,
    DriverTask,
    HypervisorConfig,
    HypervisorVM,
    PermanentDriverError,
    TaskStatus,
    TenantSpec,
    TransientDriverError,
    get_driver,
)
from .specs import vm_spec

logger = logging.getLogger(__name__)


def hypervisor_config(hypervisor: Hypervisor) -> HypervisorConfig:
    return HypervisorConfig(
        name=hypervisor.name,
        kind=hypervisor.kind,
        settings=dict(hypervisor.connection or {}),
        credentials=dict(hypervisor.credentials or {}),
    )


def driver_for(hypervisor: Hypervisor) -> Driver:
    return get_driver(hypervisor_config(hypervisor))


def observed_dict(vm: HypervisorVM | None) -> dict | None:
    if vm is None:
        return None
    return {
        "backend_id": vm.backend_id,
        "name": vm.name,
        "power_state": vm.power_state,
        "ip_addresses": list(vm.ip_addresses),
        "idempotency_key": vm.idempotency_key,
    }


def _submit(operation: Operation, driver: Driver) -> DriverTask:
    action, vm = operation.action, operation.vm
    if action == Action.CREATE:
        return driver.create(vm_spec(operation))
    if action == Action.PROVISION:
        project = operation.project
        return driver.provision_tenant(
            TenantSpec(
                project_key=project.slug,
                project_name=project.name,
                idempotency_key=str(operation.idempotency_key),
                quotas=operation.params.get("quotas", {}),
            )
        )
    if not vm.backend_id:
        if action == Action.DELETE:  # the create never reached the hypervisor
            return DriverTask(ref="noop-delete", done=True)
        raise PermanentDriverError(f"{vm.name} has no id on its hypervisor.", code="no_backend_id")
    if action == Action.START:
        return driver.start(vm.backend_id)
    if action == Action.STOP:
        return driver.stop(
            vm.backend_id, force=bool(operation.params.get("force")), hard_stop_after=vm.plan.hard_stop_after_seconds
        )
    if action == Action.REBOOT:
        return driver.reboot(vm.backend_id)
    if action == Action.DELETE:
        return driver.delete(vm.backend_id)
    if action in day2.SUBMIT:
        return day2.SUBMIT[action](operation, driver)
    if action in backups.SUBMIT:
        return backups.SUBMIT[action](operation, driver)
    raise PermanentDriverError(f"Unknown action {action}.", code="unknown_action")


def _observe(operation: Operation, driver: Driver) -> tuple[dict | None, bool]:
    """Ask the hypervisor what the guest looks like now: (observed, known)."""
    vm = operation.vm
    backend_id = (vm.backend_id if vm else "") or operation.task_data.get("backend_id")
    try:
        if backend_id:
            return observed_dict(driver.get(backend_id)), True
        if operation.action == Action.CREATE:
            return observed_dict(driver.find_by_key(str(operation.idempotency_key))), True
    except Exception:
        logger.info("could not observe guest for operation %s", operation.pk, exc_info=True)
    return None, False


def _fail(
    operation: Operation,
    token: str,
    driver: Driver | None,
    code: str,
    message: str,
    *,
    seen: tuple[dict | None, bool] | None = None,
    actor: str | None = None,
) -> str:
    """Fail the operation with what the hypervisor shows (``seen``: already asked). A failed
    create first removes the guest it made (``_clean_up``): the operation then ends when
    that delete does. Returns what happened."""
    observed, known = seen or (_observe(operation, driver) if driver and operation.vm_id else (None, False))
    if operation.action == Action.CREATE and driver and known and observed:
        return _clean_up(operation, token, driver, code, message, observed["backend_id"], actor=actor)
    services.operation_fail(
        operation=operation,
        token=token,
        code=code,
        message=message,
        observed=observed,
        observed_known=known,
        actor=actor,
    )
    if operation.action == Action.PROVISION:
        services.tenant_wake_waiting(provision=operation)
    return "failed"


# -- a failed create removes what it made ------------------------------------------------------


def _clean_up(
    operation: Operation, token: str, driver: Driver, code: str, message: str, backend_id: str, *, actor=None
) -> str:
    """Delete the half-built guest of a failed create (found by its recorded id or its
    idempotency key), then fail the operation saying so. The delete is one more handle
    of the operation: polled, resumed after a crash, bounded by the delete deadline."""
    cleanup = {"code": code, "message": message, "backend_id": backend_id, "since": timezone.now().isoformat()}
    try:
        task = driver.delete(backend_id)
    except Exception as exc:
        return _cleanup_failed(operation, token, cleanup, getattr(exc, "message", str(exc)), actor=actor)
    data = {**task.to_dict(), "cleanup": cleanup}
    removing = f"Removing the half-built guest {backend_id}."
    if not services.operation_record_progress(
        operation=operation, token=token, progress=None, message=removing, task=data
    ):
        return "lost-claim"
    operation.task_data = data
    if task.done:
        return _cleanup_done(operation, token, cleanup, actor=actor)
    _schedule_poll(operation, token, None)
    return "cleaning-up"


def _cleanup_done(operation: Operation, token: str, cleanup: dict, *, actor=None) -> str:
    services.operation_fail(
        operation=operation,
        token=token,
        code=cleanup["code"],
        message=f"{cleanup['message']} The half-built guest {cleanup['backend_id']} was removed from the hypervisor.",
        observed=None,
        observed_known=True,
        result={"cleanup": {"removed": cleanup["backend_id"]}},
        actor=actor,
    )
    return "failed"


def _cleanup_failed(operation: Operation, token: str, cleanup: dict, error: str, *, actor=None) -> str:
    services.operation_fail(
        operation=operation,
        token=token,
        code=cleanup["code"],
        message=(
            f"{cleanup['message']} Removing the half-built guest {cleanup['backend_id']} failed ({error}); it carries"
            f" the idempotency key {operation.idempotency_key}: retry the create to adopt it, or delete it by hand."
        ),
        result={"cleanup": {"left": cleanup["backend_id"], "error": error}},
        actor=actor,
    )
    return "failed"


def _poll_cleanup(operation: Operation, token: str, driver: Driver, cleanup: dict, handle: DriverTask) -> str:
    started = datetime.fromisoformat(cleanup["since"])
    if (timezone.now() - started).total_seconds() > DEADLINE_SECONDS.get(Action.DELETE, DEFAULT_DEADLINE_SECONDS):
        return _cleanup_failed(operation, token, cleanup, "the delete did not finish within its deadline")
    try:
        status = driver.poll(handle)
    except PermanentDriverError as exc:
        return _cleanup_failed(operation, token, cleanup, exc.message)
    except Exception as exc:
        errors = services.operation_record_poll_error(operation=operation, token=token, message=str(exc))
        if errors is None:
            return "lost-claim"
        if errors >= POLL_ERROR_LIMIT:
            return _cleanup_failed(operation, token, cleanup, getattr(exc, "message", str(exc)))
        _schedule_poll(operation, token, backoff_seconds(errors))
        return "poll-error"
    if status.done:
        return _cleanup_done(operation, token, cleanup)
    replacement = {**status.task.to_dict(), "cleanup": cleanup} if status.task else None
    if not services.operation_record_progress(
        operation=operation, token=token, progress=status.progress, message=status.message, task=replacement
    ):
        return "lost-claim"
    _schedule_poll(operation, token, status.poll_after)
    return "cleaning-up"


# -- deadlines ---------------------------------------------------------------------------------


def _settle_overdue(operation: Operation, token: str, driver: Driver | None, *, actor: str | None = None) -> str:
    """Past its deadline: ask the hypervisor. The action's desired state reached → succeeded;
    otherwise failed with the deadline and what the hypervisor shows. Never left running."""
    seen = _observe(operation, driver) if driver and operation.vm_id else (None, False)
    observed, known = seen
    if desired_state_reached(action=operation.action, observed=observed, observed_known=known):
        note = f"Past its deadline of {deadline_seconds(operation=operation)} s the hypervisor showed it done."
        services.operation_succeed(
            operation=operation, token=token, observed=observed, result={"observed": observed, "deadline": note}
        )
        return "succeeded"
    if not known:
        shows = "could not be asked"
    elif observed is None:
        shows = "shows no such guest"
    else:
        shows = f"shows the guest {observed.get('power_state') or 'in an unknown state'}"
    message = f"{deadline_message(operation)} The hypervisor {shows}."
    return _fail(operation, token, driver, deadline_code(operation), message, seen=seen, actor=actor)


def _transient(operation: Operation, token: str, driver: Driver, exc: Exception) -> None:
    code = getattr(exc, "code", type(exc).__name__)
    message = getattr(exc, "message", str(exc)) or type(exc).__name__
    verdict = retry_verdict(operation=operation)
    if verdict == Verdict.RETRY:
        services.operation_retry_later(operation=operation, token=token, code=code, message=message)
    elif verdict == Verdict.OVERDUE:
        _settle_overdue(operation, token, driver)
    else:
        _fail(operation, token, driver, code, f"Gave up after {operation.attempts} attempts: {message}")


def _schedule_poll(operation: Operation, token: str, after: float | None) -> None:
    engine = settings.ENGINE
    delay = DEFAULT_POLL_SECONDS if after is None else after
    delay = min(engine["POLL_MAX_SECONDS"], max(engine["POLL_MIN_SECONDS"], delay))
    dispatch.publish_poll(operation_id=operation.pk, token=token, queue=operation.hypervisor.queue, countdown=delay)


def execute_operation(operation_id: int, *, worker: str) -> str:
    """Claim and submit (or resume) one operation. Returns what happened, for logs and tests."""
    claim = services.operation_claim(operation_id=operation_id, worker=worker)
    if claim is None:
        return "not-claimed"
    operation, token = claim.operation, claim.token
    try:
        driver = driver_for(operation.hypervisor)
    except DriverError as exc:
        return _fail(operation, token, None, exc.code, exc.message)
    if operation.task_data:
        # Resuming after a lost worker or a transient poll error: ask about the stored handle.
        return _poll_step(operation, token, driver)
    if operation.action == Action.CREATE and driver.supports_tenants:
        # The project's first VM here: its tenant is provisioned first (compute/services/tenants.py).
        gate = services.tenant_gate(operation=operation, token=token)
        if gate != services.tenants.READY:
            return gate
    try:
        task = _submit(operation, driver)
    except PermanentDriverError as exc:
        return _fail(operation, token, driver, exc.code, exc.message)
    except Exception as exc:  # TransientDriverError, and anything unexpected: retry, bounded
        if not isinstance(exc, TransientDriverError):
            logger.exception("unexpected error submitting operation %s", operation.pk)
        _transient(operation, token, driver, exc)
        return "retry"
    if task.done and _finish_at_once(operation, token, driver, task):
        return "succeeded"
    if not services.operation_record_submitted(operation=operation, token=token, task=task.to_dict()):
        return "lost-claim"
    if task.done:
        return _poll_step(operation, token, driver)
    _schedule_poll(operation, token, None)
    return "submitted"


def _finish_at_once(operation: Operation, token: str, driver: Driver, task: DriverTask) -> bool:
    """The hypervisor answered "done" to the submit itself (a start on most drivers, every
    action on a zero-latency simulator): store the handle and write the result back in ONE
    transaction instead of two. The crash window is the one the usual path has between the
    submit and storing its handle. Anything but a clean success (a poll error, not done, a
    tenant, past its deadline) returns False and takes the usual path."""
    if operation.action == Action.PROVISION or operation_is_overdue(operation=operation):
        return False
    try:
        status = driver.poll(task)
    except Exception:  # the usual path polls again and counts the error
        return False
    if not status.done:
        return False
    observed = observed_dict(status.vm)
    if operation.action == Action.CREATE and not (observed and observed.get("backend_id")):
        return False  # the guest's id must be stored; the usual path records it from the handle
    return services.operation_succeed(
        operation=operation,
        token=token,
        observed=observed,
        result={"observed": observed, **status.result},
        submitted=task.to_dict(),
    )


def poll_operation(operation_id: int, token: str) -> str:
    operation = selectors.operation_get_claimed(operation_id=operation_id, token=token)
    if operation is None:
        return "stale"
    try:
        driver = driver_for(operation.hypervisor)
    except DriverError as exc:
        return _fail(operation, token, None, exc.code, exc.message)
    return _poll_step(operation, token, driver)


def _poll_step(operation: Operation, token: str, driver: Driver) -> str:
    task_data = dict(operation.task_data)
    cleanup = task_data.pop("cleanup", None)
    handle = DriverTask.from_dict(task_data)
    if cleanup:
        return _poll_cleanup(operation, token, driver, cleanup, handle)
    if operation_is_overdue(operation=operation):
        return _settle_overdue(operation, token, driver)
    try:
        status: TaskStatus = driver.poll(handle)
    except PermanentDriverError as exc:
        return _fail(operation, token, driver, exc.code, exc.message)
    except Exception as exc:
        if not isinstance(exc, TransientDriverError):
            logger.exception("unexpected error polling operation %s", operation.pk)
        message = getattr(exc, "message", str(exc))
        errors = services.operation_record_poll_error(operation=operation, token=token, message=message)
        if errors is None:
            return "lost-claim"
        if errors >= POLL_ERROR_LIMIT:
            _transient(operation, token, driver, exc)
            return "retry"
        _schedule_poll(operation, token, backoff_seconds(errors))
        return "poll-error"
    if status.done:
        observed = observed_dict(status.vm)
        if operation.action == Action.PROVISION:
            result = (status.task or handle).data
        else:
            result = {"observed": observed, **status.result}
        services.operation_succeed(operation=operation, token=token, observed=observed, result=result)
        if operation.action == Action.PROVISION:
            services.tenant_wake_waiting(provision=operation)
        return "succeeded"
    replacement = status.task.to_dict() if status.task else None
    if not services.operation_record_progress(
        operation=operation, token=token, progress=status.progress, message=status.message, task=replacement
    ):
        return "lost-claim"
    _schedule_poll(operation, token, status.poll_after)
    return "polling"


# -- housekeeping ------------------------------------------------------------------------------


def reap_expired_operations() -> dict:
    """Expired leases go back to pending (resumed by the next claim) unless the retry
    rule (compute/retry.py) says give up: then they fail with a clear reason, or, past
    their deadline, are settled from what the hypervisor shows. An operation whose row
    another process holds (a frozen worker inside its write-back) is skipped, never
    waited for: the next pass finds it again."""
    requeued = failed = settled = skipped = 0
    for operation in services.operation_list_expired():
        try:
            outcome = _reap_one(operation)
        except OperationalError as exc:  # a lock or statement timeout: someone holds a row we need
            logger.warning("reaper: skipped operation %s: %s", operation.pk, exc)
            outcome = "skipped"
        requeued += outcome == "requeued"
        failed += outcome == "failed"
        settled += outcome in ("succeeded", "cleaning-up")
        skipped += outcome == "skipped"
    return {"requeued": requeued, "failed": failed, "settled": settled, "skipped": skipped}


def _reap_one(operation: Operation) -> str:
    if not services.operation_is_unlocked(operation=operation):
        return "skipped"
    verdict = retry_verdict(operation=operation)
    if verdict == Verdict.RETRY:
        return "requeued" if services.operation_requeue_expired(operation=operation) else "skipped"
    try:
        driver = driver_for(operation.hypervisor)
    except DriverError:
        driver = None
    token = str(operation.claim_token)
    if verdict == Verdict.OVERDUE:
        return _settle_overdue(operation, token, driver, actor="reaper")
    reason = f"Its worker was lost {operation.attempts} times; giving up."
    return _fail(operation, token, driver, "worker_lost", reason, actor="reaper")


def relay_pending_operations() -> dict:
    return {"relayed": services.operation_relay_pending()}


def reconcile_hypervisor(hypervisor: Hypervisor) -> dict:
    """One list call; an API error never counts as "VM gone"."""
    listed_at = timezone.now()
    try:
        guests = driver_for(hypervisor).list_all()
    except Exception as exc:
        logger.warning("reconcile: listing %s failed: %s", hypervisor.name, exc)
        services.hypervisor_record_check(
            hypervisor=hypervisor, result={"ok": False, "error": str(exc)[:500], "at": listed_at.isoformat()}
        )
        return {"hypervisor": hypervisor.name, "error": str(exc)}
    observed = [observed_dict(guest) for guest in guests]
    report = services.hypervisor_reconcile(hypervisor=hypervisor, observed=observed, listed_at=listed_at).as_dict()
    driver = driver_for(hypervisor)
    return {**report, **day2.reconcile_snapshots(hypervisor, driver), **backups.reconcile_backups(hypervisor, driver)}


def reconcile_all() -> list[dict]:
    return [reconcile_hypervisor(hv) for hv in selectors.hypervisor_list_to_reconcile()]


def resync_vm(vm_id: int) -> str:
    """Read one VM's real state from its hypervisor and write it back (operators' resync)."""
    vm = selectors.vm_get_with_hypervisor(pk=vm_id)
    if vm is None:
        return "gone"
    driver = driver_for(vm.hypervisor)
    if vm.backend_id:
        observed = observed_dict(driver.get(vm.backend_id))
    else:
        create = selectors.operation_latest_create(vm=vm)
        observed = observed_dict(driver.find_by_key(str(create.idempotency_key))) if create else None
    services.vm_apply_observation(vm_id=vm.pk, observed=observed, source="operator")
    return "resynced"


def check_hypervisor(hypervisor_id: int) -> dict:
    """Test a hypervisor's connection; the answer is stored for the admin to show."""
    hypervisor = selectors.hypervisor_get(pk=hypervisor_id)
    at = timezone.now().isoformat()
    try:
        result = {"ok": True, "at": at, **driver_for(hypervisor).check()}
    except Exception as exc:
        result = {"ok": False, "at": at, "error": getattr(exc, "message", str(exc))[:500]}
    services.hypervisor_record_check(hypervisor=hypervisor, result=result)
    return result
