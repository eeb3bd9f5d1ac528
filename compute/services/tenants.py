"""Tenant provisioning before a project's first VM on a hypervisor that isolates projects.

A driver that ``supports_tenants`` (OpenStack) needs the project provisioned there
(an OpenStack project, network, router...) before it can build a server. The worker
that claimed a create asks ``tenant_gate``: with a ready ``TenantBinding`` it goes
on; otherwise a ``provision`` Operation for project + hypervisor is created (or the
active one joined; the partial unique index allows one) and the create goes back to
``pending`` to wait for it. Those waits do not use up the create's attempts; they are
bounded by the hypervisor's build timeout. When the provision finishes, the waiting
creates are re-published at once (``tenant_wake_waiting``); if it failed, they fail
with its reason. Success writes the binding (``operation_succeed``).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

import audit
from compute import dispatch
from compute.choices import ACTIVE_OPERATION_STATES, Action, OperationState
from compute.models import Operation, ProjectQuota, TenantBinding
from compute.retry import operation_is_overdue
from controlplane.errors import Conflict

from .operations import operation_create, operation_fail

READY, WAITING, FAILED = "ready", "waiting-tenant", "failed"
PARAM = "tenant_provision"  # the create's params: the provision operation it waits for


def _wait_seconds() -> float:
    """How soon a waiting create looks again if nobody wakes it (a provision's end does)."""
    return float(settings.ENGINE["POLL_MAX_SECONDS"])


def tenant_quotas(*, project) -> dict[str, int]:
    """Our project quota, in the terms a driver pushes to the hypervisor's project."""
    quota = ProjectQuota.objects.filter(project=project).first() or ProjectQuota(project=project)
    return {
        "instances": quota.max_vms,
        "cores": quota.max_vcpus,
        "ram_mib": quota.max_memory_mib,
        "disk_gib": quota.max_disk_gib,
    }


def _active_provision(operation: Operation) -> Operation | None:
    return Operation.objects.filter(
        project_id=operation.project_id,
        hypervisor_id=operation.hypervisor_id,
        action=Action.PROVISION,
        state__in=ACTIVE_OPERATION_STATES,
    ).first()


def _provision_for(operation: Operation) -> Operation:
    """The provision this create waits for: the one it already waits for (unless that one
    succeeded earlier and the binding was lost since), the active one, or a new one."""
    waited = operation.params.get(PARAM)
    if waited:
        provision = Operation.objects.filter(pk=waited, action=Action.PROVISION).first()
        if provision is not None and provision.state != OperationState.SUCCEEDED:
            return provision
    provision = _active_provision(operation)
    if provision is not None:
        return provision
    try:
        provision = operation_create(
            vm=None,
            action=Action.PROVISION,
            project=operation.project,
            hypervisor=operation.hypervisor,
            requested_by=operation.requested_by,
            params={"quotas": tenant_quotas(project=operation.project), "for_operation": operation.pk},
        )
    except Conflict:  # another create of the project started one a moment ago (and it may be over)
        return _active_provision(operation) or Operation.objects.filter(
            project_id=operation.project_id, hypervisor_id=operation.hypervisor_id, action=Action.PROVISION
        ).latest("created_at")
    audit.record(
        actor=f"worker:{operation.worker}",
        action="operation.state_changed",
        target=provision,
        project=operation.project_id,
        details={
            "operation": provision.pk,
            "action": Action.PROVISION,
            "state": OperationState.PENDING,
            "reason": f"first VM of the project on {operation.hypervisor.name}",
            "for_operation": operation.pk,
        },
    )
    return provision


def _guarded(operation: Operation, token: str):
    return Operation.objects.filter(pk=operation.pk, state=OperationState.RUNNING, claim_token=token)


@transaction.atomic
def tenant_gate(*, operation: Operation, token: str) -> str:
    """For the worker holding a create on a hypervisor whose driver provisions tenants.

    Returns ``READY`` (submit the create), ``WAITING`` (the create is pending again until
    the project's provision finishes) or ``FAILED`` (the provision failed, or took longer
    than the build timeout: the create failed with that reason).
    """
    hypervisor = operation.hypervisor
    if TenantBinding.objects.filter(project=operation.project_id, hypervisor=hypervisor.pk, ready=True).exists():
        return READY
    provision = _provision_for(operation)
    reason = None
    if provision.state in (OperationState.FAILED, OperationState.CANCELLED):
        detail = provision.error_message or provision.get_state_display().lower()
        reason = f"Setting up the project on {hypervisor.name} failed: {detail}"
    elif operation_is_overdue(operation=operation):
        reason = f"Setting up the project on {hypervisor.name} did not finish within the build timeout."
    if reason:
        # Forget the provision, so an operator's retry of this create provisions afresh.
        _guarded(operation, token).update(params={k: v for k, v in operation.params.items() if k != PARAM})
        operation_fail(operation=operation, token=token, code="tenant_provision_failed", message=reason)
        return FAILED
    now = timezone.now()
    delay = _wait_seconds()
    updated = _guarded(operation, token).update(
        state=OperationState.PENDING,
        claim_token=None,
        lease_until=None,
        attempts=Greatest(F("attempts") - 1, 0),  # waiting is not an attempt
        next_attempt_at=now + timedelta(seconds=delay),
        published_at=now,
        params={**operation.params, PARAM: provision.pk},
        progress_message=f"Waiting for tenant provisioning on {hypervisor.name} (operation {provision.pk}).",
    )
    if updated:
        dispatch.publish_execute(operation_id=operation.pk, queue=hypervisor.queue, countdown=delay)
    return WAITING


@transaction.atomic
def tenant_wake_waiting(*, provision: Operation) -> int:
    """A provision finished: re-publish the creates waiting for it now, not at their next look."""
    now = timezone.now()
    waiting = list(
        Operation.objects.filter(
            state=OperationState.PENDING, action=Action.CREATE, **{f"params__{PARAM}": provision.pk}
        ).select_related("hypervisor")
    )
    for operation in waiting:
        if Operation.objects.filter(pk=operation.pk, state=OperationState.PENDING).update(
            next_attempt_at=now, published_at=now
        ):
            dispatch.publish_execute(operation_id=operation.pk, queue=operation.hypervisor.queue)
    return len(waiting)
