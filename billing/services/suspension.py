"""Suspension for non-payment, and lifting it.

A project whose balance stays below zero for the configured grace period is
suspended: ``Project.suspended_at`` is set (the compute services then refuse
new requests and starts), and its active VMs are stopped through ordinary
Operations (``compute.services.vm_action``). A credit that brings the balance
back to zero or more lifts it: the crediting service (top-up, adjustment,
credit note, an invoice's settlement) calls ``suspension_lift_if_paid`` after
posting; the ledger itself never does. The VMs billing stopped are started
again only when the operator configured that.

Floors: this module stands on the ledger (``wallet_lock``) and on compute's
services; the wallet and document services stand on it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

import audit
from accounts.models import Project
from compute import services as compute_services
from compute.choices import Action, VMStatus
from compute.models import VirtualMachine
from controlplane.errors import Conflict, InvalidInput, ServiceError

from ..models import Wallet
from ..money import format_inr
from ..periods import billing_tz
from ..selectors import billing_settings_get, suspension_due_project_ids
from .ledger import wallet_lock

logger = logging.getLogger(__name__)
ACTOR = "system:billing"


def _vm_action(vm: VirtualMachine, action: str) -> bool:
    """Ask compute for an operation; False when the VM cannot take it now
    (busy, or not in a state that allows it: the next run tries again)."""
    try:
        compute_services.vm_action(vm=vm, action=action, user=None, actor=ACTOR)
    except ServiceError as exc:
        logger.info("billing could not %s VM %s: %s", action, vm.pk, exc.message)
        return False
    return True


def _stop_active_vms(project_id: int) -> list[int]:
    stopped = []
    for vm in VirtualMachine.objects.filter(project_id=project_id, status=VMStatus.ACTIVE).order_by("pk"):
        if _vm_action(vm, Action.STOP):
            stopped.append(vm.pk)
    return stopped


@transaction.atomic
def suspension_apply(*, project_id: int, now: datetime | None = None) -> bool:
    """Suspend one project if its balance has been negative past the grace
    period; idempotent (a suspended project only gets its stragglers stopped)."""
    now = now or timezone.now()
    settings = billing_settings_get()
    wallet = wallet_lock(project_id=project_id)
    project = Project.objects.select_for_update().get(pk=project_id)
    if wallet.suspended_by_billing:
        stopped = _stop_active_vms(project_id)  # VMs that were busy (or building) last time
        if stopped:
            Wallet.objects.filter(pk=wallet.pk).update(stopped_vm_ids=sorted({*wallet.stopped_vm_ids, *stopped}))
        return False
    overdue = wallet.negative_since and wallet.negative_since <= now - timedelta(hours=settings.grace_hours)
    if not overdue or project.is_suspended:
        return False
    reason = (
        f"Wallet below zero since {wallet.negative_since.astimezone(billing_tz()):%d %b %Y %H:%M} "
        f"(₹{format_inr(wallet.balance)}); top up to lift."
    )
    Project.objects.filter(pk=project_id).update(suspended_at=now, suspended_reason=reason[:255])
    stopped = _stop_active_vms(project_id)
    Wallet.objects.filter(pk=wallet.pk).update(suspended_by_billing=True, stopped_vm_ids=stopped)
    audit.record(
        actor=ACTOR,
        action="project.suspended",
        target=project,
        project=project,
        details={
            "balance": str(wallet.balance),
            "negative_since": wallet.negative_since.isoformat(),
            "stopped_vms": stopped,
        },
    )
    return True


def suspension_apply_due(*, now: datetime | None = None) -> int:
    """Suspend every project past its grace period; re-stop stragglers of
    projects already suspended. Each project in its own transaction."""
    now = now or timezone.now()
    grace = timedelta(hours=billing_settings_get().grace_hours)
    count = 0
    for project_id in suspension_due_project_ids(negative_before=now - grace):
        count += suspension_apply(project_id=project_id, now=now)
    return count


def suspension_lift_if_paid(*, wallet: Wallet, actor) -> bool:
    """After a credit to ``wallet`` (locked by ``wallet_lock``, in the credit's
    transaction): lift billing's suspension when the balance is back at zero
    or more. True when it lifted one."""
    if not wallet.suspended_by_billing or wallet.balance < 0:
        return False
    suspension_lift(wallet=wallet, actor=actor)
    return True


def suspension_lift(*, wallet: Wallet, actor) -> None:
    """Lift billing's suspension of a locked wallet's project: clear the
    project's suspension, start the VMs billing stopped when the operator
    configured that, and audit."""
    project = Project.objects.select_for_update().get(pk=wallet.project_id)
    Project.objects.filter(pk=project.pk).update(suspended_at=None, suspended_reason="")
    started = []
    if billing_settings_get().auto_start_after_suspension:
        vms = VirtualMachine.objects.filter(pk__in=wallet.stopped_vm_ids, status=VMStatus.STOPPED).order_by("pk")
        started = [vm.pk for vm in vms if _vm_action(vm, Action.START)]
    stopped = wallet.stopped_vm_ids
    wallet.suspended_by_billing, wallet.stopped_vm_ids = False, []
    Wallet.objects.filter(pk=wallet.pk).update(suspended_by_billing=False, stopped_vm_ids=[])
    audit.record(
        actor=actor,
        action="project.unsuspended",
        target=project,
        project=project,
        details={"balance": str(wallet.balance), "stopped_by_billing": stopped, "started": started},
    )


@transaction.atomic
def project_suspend(*, project: Project, actor, reason: str, request=None) -> list[int]:
    """An operator suspends a project (abuse, a dispute...): new requests and
    starts are refused and its active VMs are stopped through operations.
    Returns the ids of the VMs asked to stop."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Give a reason: the project's members see it.", fields={"reason": ["A reason is required."]})
    project = Project.objects.select_for_update().get(pk=project.pk)
    if project.is_suspended:
        raise Conflict(f"{project.name} is already suspended.")
    Project.objects.filter(pk=project.pk).update(suspended_at=timezone.now(), suspended_reason=reason[:255])
    stopped = _stop_active_vms(project.pk)
    audit.record(
        actor=actor,
        action="project.suspended",
        target=project,
        project=project,
        details={"reason": reason, "stopped_vms": stopped, "by": "operator"},
        request=request,
    )
    return stopped


@transaction.atomic
def project_unsuspend(*, project: Project, actor, request=None) -> None:
    """Lift a suspension. Billing's own (wallet below zero) lifts only once the
    balance is back at zero or more: top up or adjust the wallet instead."""
    wallet = wallet_lock(project_id=project.pk)
    project = Project.objects.select_for_update().get(pk=project.pk)
    if not project.is_suspended:
        raise Conflict(f"{project.name} is not suspended.")
    if wallet.suspended_by_billing:
        if wallet.balance < 0:
            raise Conflict(
                f"{project.name} is suspended for a negative balance (₹{format_inr(wallet.balance)}): "
                "top up or adjust its wallet and billing lifts the suspension."
            )
        suspension_lift(wallet=wallet, actor=actor)
        return
    Project.objects.filter(pk=project.pk).update(suspended_at=None, suspended_reason="")
    audit.record(
        actor=actor,
        action="project.unsuspended",
        target=project,
        project=project,
        details={"reason": project.suspended_reason, "by": "operator"},
        request=request,
    )
