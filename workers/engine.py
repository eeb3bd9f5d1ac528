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

from django.conf import settings
from django.utils import timezone

from compute import dispatch, selectors, services
from compute.choices import DEFAULT_POLL_SECONDS, POLL_ERROR_LIMIT, Action
from compute.models import Hypervisor, Operation
from compute.retry import Verdict, backoff_seconds, build_timeout_message, operation_is_overdue, retry_verdict

from . import day2
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


def _fail(operation: Operation, token: str, driver: Driver | None, code: str, message: str) -> None:
    observed, known = _observe(operation, driver) if driver and operation.vm_id else (None, False)
    services.operation_fail(
        operation=operation, token=token, code=code, message=message, observed=observed, observed_known=known
    )
    if operation.action == Action.PROVISION:
        services.tenant_wake_waiting(provision=operation)


def _transient(operation: Operation, token: str, driver: Driver, exc: Exception) -> None:
    code = getattr(exc, "code", type(exc).__name__)
    message = getattr(exc, "message", str(exc)) or type(exc).__name__
    verdict = retry_verdict(operation=operation)
    if verdict == Verdict.RETRY:
        services.operation_retry_later(operation=operation, token=token, code=code, message=message)
    elif verdict == Verdict.OVERDUE:
        _fail(operation, token, driver, "build_timeout", build_timeout_message(operation))
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
        _fail(operation, token, None, exc.code, exc.message)
        return "failed"
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
        _fail(operation, token, driver, exc.code, exc.message)
        return "failed"
    except Exception as exc:  # TransientDriverError, and anything unexpected: retry, bounded
        if not isinstance(exc, TransientDriverError):
            logger.exception("unexpected error submitting operation %s", operation.pk)
        _transient(operation, token, driver, exc)
        return "retry"
    if not services.operation_record_submitted(operation=operation, token=token, task=task.to_dict()):
        return "lost-claim"
    if task.done:
        return _poll_step(operation, token, driver)
    _schedule_poll(operation, token, None)
    return "submitted"


def poll_operation(operation_id: int, token: str) -> str:
    operation = selectors.operation_get_claimed(operation_id=operation_id, token=token)
    if operation is None:
        return "stale"
    try:
        driver = driver_for(operation.hypervisor)
    except DriverError as exc:
        _fail(operation, token, None, exc.code, exc.message)
        return "failed"
    return _poll_step(operation, token, driver)


def _poll_step(operation: Operation, token: str, driver: Driver) -> str:
    if operation_is_overdue(operation=operation):
        _fail(operation, token, driver, "build_timeout", build_timeout_message(operation))
        return "failed"
    handle = DriverTask.from_dict(operation.task_data)
    try:
        status: TaskStatus = driver.poll(handle)
    except PermanentDriverError as exc:
        _fail(operation, token, driver, exc.code, exc.message)
        return "failed"
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
    rule (compute/retry.py) says give up: then they fail with a clear reason."""
    requeued = failed = 0
    for operation in services.operation_list_expired():
        verdict = retry_verdict(operation=operation)
        if verdict == Verdict.RETRY:
            if services.operation_requeue_expired(operation=operation):
                requeued += 1
            continue
        try:
            driver = driver_for(operation.hypervisor)
        except DriverError:
            driver = None
        observed, known = _observe(operation, driver) if driver and operation.vm_id else (None, False)
        reason = (
            build_timeout_message(operation)
            if verdict == Verdict.OVERDUE
            else f"Its worker was lost {operation.attempts} times; giving up."
        )
        if services.operation_fail(
            operation=operation,
            token=str(operation.claim_token),
            code="worker_lost",
            message=reason,
            observed=observed,
            observed_known=known,
            actor="reaper",
        ):
            failed += 1
    return {"requeued": requeued, "failed": failed}


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
    return {**report, **day2.reconcile_snapshots(hypervisor, driver_for(hypervisor))}


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
