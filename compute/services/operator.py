"""Operator actions on operations: cancel one the hypervisor never got, retry a failed one.

Called from the admin (compute/admin.py) and the ``operation_cancel`` /
``operation_retry`` commands; both are audited with the operator as actor.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

import audit
from compute import dispatch
from compute.choices import Action, OperationState, VMStatus
from compute.models import Operation, VirtualMachine
from controlplane.errors import Conflict

from .day2_writeback import day2_after_failure, day2_before_retry
from .operations import vm_lock_for_writeback
from .quotas import quota_reserve
from .writeback import vm_record_status


def _audit(operation: Operation, actor, action: str) -> None:
    audit.record(
        actor=actor,
        action=action,
        target=operation.vm or operation,
        project=operation.project_id,
        details={"operation": operation.pk, "action": operation.action},
    )


@transaction.atomic
def operation_cancel(*, operation: Operation, actor) -> Operation:
    """Cancel a pending operation the hypervisor never got (a running one belongs to a
    worker, and a pending one with a handle is being resumed: wait or let it fail)."""
    updated = Operation.objects.filter(pk=operation.pk, state=OperationState.PENDING, task_ref="").update(
        state=OperationState.CANCELLED, finished_at=timezone.now(), claim_token=None, progress_message=""
    )
    if not updated:
        operation.refresh_from_db()
        if operation.state == OperationState.PENDING:
            raise Conflict("The hypervisor already has this operation and it is being resumed; wait for it to end.")
        raise Conflict(
            f"Only a pending operation can be cancelled; this one is {operation.get_state_display().lower()}."
        )
    operation.refresh_from_db()
    if operation.vm_id:
        vm = vm_lock_for_writeback(operation.vm_id)
        if operation.action == Action.CREATE:
            vm_record_status(vm=vm, status=VMStatus.DELETED, observed=None, operation=operation, source="operator")
        else:
            VirtualMachine.objects.filter(pk=vm.pk).update(task_state=None)
            day2_after_failure(operation=operation, vm=vm)
    _audit(operation, actor, "operation.cancelled")
    return operation


@transaction.atomic
def operation_retry(*, operation: Operation, actor) -> Operation:
    """Run a failed operation again, from scratch, with the same idempotency key
    (so a half-built guest from the failed create is found, not duplicated)."""
    operation = (
        Operation.objects.select_for_update(no_key=True, of=("self",))
        .select_related("hypervisor", "vm")
        .get(pk=operation.pk)
    )
    if operation.state != OperationState.FAILED:
        raise Conflict(f"Only a failed operation can be retried; this one is {operation.get_state_display().lower()}.")
    if operation.vm_id:
        vm = vm_lock_for_writeback(operation.vm_id)
        if vm.status == VMStatus.DELETED:
            raise Conflict("The VM is deleted; nothing to retry.")
        if operation.action == Action.CREATE and not vm.quota_held:
            quota_reserve(project=vm.project, plan=vm.plan)
            VirtualMachine.objects.filter(pk=vm.pk).update(quota_held=True)
        day2_before_retry(operation=operation, vm=vm)
    now = timezone.now()
    try:
        with transaction.atomic():
            updated = Operation.objects.filter(pk=operation.pk, state=OperationState.FAILED).update(
                state=OperationState.PENDING,
                attempts=0,
                poll_errors=0,
                next_attempt_at=now,
                published_at=now,
                finished_at=None,
                claim_token=None,
                task_ref="",
                task_data={},
                progress=None,
                progress_message="Retried by an operator.",
                error_code="",
                error_message="",
            )
    except IntegrityError:
        raise Conflict("Another operation is in progress on this VM; retry after it finishes.") from None
    if not updated:
        raise Conflict("The operation changed meanwhile; reload and try again.")
    if operation.vm_id:
        fields = {"task_state": operation.action}
        if operation.action == Action.CREATE:
            fields["status"] = VMStatus.BUILDING
        VirtualMachine.objects.filter(pk=operation.vm_id).update(**fields)
    operation.refresh_from_db()
    _audit(operation, actor, "operation.retried")
    dispatch.publish_execute(operation_id=operation.pk, queue=operation.hypervisor.queue)
    return operation
