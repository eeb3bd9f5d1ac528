"""Batch requests: N VMs from one plan and image in one call (a class lab, ``lab-{n}``).

A batch is accepted in one transaction, all or nothing: the same checks as one
request (role, suspension, plan/image/hypervisor, admission checks such as the
billing profile and the wallet, hypervisor capacity, IP pool, quota) are run
once for all N, the quota is reserved for all N, and the N ``VMRequest`` rows,
their audit events and (when no approval is needed) the N VMs, their timeline
events and create Operations are inserted with bulk statements. Each VM is still
built by its own Operation through the engine. A plan that needs approval
leaves the requests pending; an operator approves or rejects the batch (or its
requests one by one, through the usual request services).
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

import audit
from accounts.choices import Role
from accounts.selectors import project_require_role
from compute.choices import Action, RequestStatus, VMStatus
from compute.models import Hypervisor, Image, Plan, VirtualMachine, VMBatch, VMRequest, name_validator
from controlplane.errors import Conflict, InvalidInput

from .. import admission
from .capacity import hypervisor_capacity_check
from .ipam import ipam_allocate_for_vms
from .operations import operation_create_many
from .quotas import quota_check, quota_release, quota_reserve
from .requests import _check_not_suspended, _saved_key_text, _staff_required, _validate, names_taken
from .writeback import vm_timeline_append_many

MAX_BATCH_SIZE = 1000


def batch_names(*, name_pattern: str, count: int, first_number: int = 1) -> list[str]:
    """The VM names of a batch, or ``InvalidInput`` naming the field at fault."""
    if not isinstance(count, int) or not 1 <= count <= MAX_BATCH_SIZE:
        raise InvalidInput(
            f"A batch has 1 to {MAX_BATCH_SIZE} VMs.", fields={"count": [f"Between 1 and {MAX_BATCH_SIZE}."]}
        )
    if not isinstance(first_number, int) or not 0 <= first_number <= 1_000_000:
        raise InvalidInput("The first number is 0 to 1000000.", fields={"first_number": ["Between 0 and 1000000."]})
    if name_pattern.count("{n}") != 1:
        message = "The name pattern holds {n} exactly once, such as lab-{n}."
        raise InvalidInput(message, fields={"name_pattern": [message]})
    names = [name_pattern.replace("{n}", str(n)) for n in range(first_number, first_number + count)]
    bad = next((name for name in names if len(name) > 63 or not name_validator.regex.match(name)), None)
    if bad is not None:
        message = (
            f"{bad!r} is not a valid VM name: 1-63 lowercase letters, digits and hyphens, "
            "starting and ending with a letter or digit."
        )
        raise InvalidInput(message, fields={"name_pattern": [message]})
    return names


def _check_names_free(project, names: list[str]) -> None:
    taken = names_taken(project, names)
    if taken:
        shown = ", ".join(sorted(taken)[:5]) + (" ..." if len(taken) > 5 else "")
        raise Conflict(
            f"{len(taken)} of the names are taken in {project.name} by a VM or pending request: {shown}.",
            code="name_taken",
            fields={"name_pattern": ["Some names are taken in the project; choose another pattern or first number."]},
        )


@transaction.atomic
def vm_batch_create(
    *,
    user,
    project,
    plan: Plan,
    image: Image,
    hypervisor: Hypervisor,
    name_pattern: str,
    count: int,
    first_number: int = 1,
    ssh_public_key: str = "",
    ssh_key_id: int | None = None,
    user_data: str = "",
    request=None,
) -> VMBatch:
    """Ask for ``count`` VMs named ``name_pattern`` with ``{n}`` from ``first_number``.
    All accepted or none (a domain error says why); approved at once, like one
    request, when the plan needs no approval or the user is trusted."""
    project_require_role(user=user, project=project, role=Role.MEMBER, staff_override=user.is_staff)
    names = batch_names(name_pattern=name_pattern, count=count, first_number=first_number)
    ssh_public_key = _saved_key_text(user=user, project=project, ssh_key_id=ssh_key_id, ssh_public_key=ssh_public_key)
    _check_not_suspended(project)
    _validate(plan=plan, image=image, hypervisor=hypervisor, ssh_public_key=ssh_public_key, user_data=user_data)
    quota_check(project=project, plan=plan, count=count)  # a batch over the quota is refused for that first
    admission.run_checks(project=project, plan=plan, count=count)
    hypervisor_capacity_check(hypervisor=hypervisor, plan=plan, lock=True, count=count)  # before anything audits
    _check_names_free(project, names)
    quota_reserve(project=project, plan=plan, count=count)
    batch = VMBatch.objects.create(
        project=project,
        requester=user,
        plan=plan,
        image=image,
        hypervisor=hypervisor,
        name_pattern=name_pattern,
        first_number=first_number,
        count=count,
    )
    try:
        with transaction.atomic():
            requests = VMRequest.objects.bulk_create(
                VMRequest(
                    project=project,
                    requester=user,
                    plan=plan,
                    image=image,
                    hypervisor=hypervisor,
                    batch=batch,
                    name=name,
                    ssh_public_key=ssh_public_key.strip(),
                    user_data=user_data,
                )
                for name in names
            )
    except IntegrityError:
        raise Conflict("A pending request with one of these names was just made.", code="name_taken") from None
    needs_approval = plan.requires_approval and not user.is_trusted
    details = {"plan": plan.name, "image": image.name, "hypervisor": hypervisor.name, "batch": batch.pk}
    events = [
        {
            "actor": user,
            "action": "batch.created",
            "target": batch,
            "project": project,
            "details": {**details, "count": count, "names": f"{names[0]} .. {names[-1]}"},
            "request": request,
        }
    ]
    events += [
        {
            "actor": user,
            "action": "request.created",
            "target": vm_request,
            "project": project,
            "details": {**details, "needs_approval": needs_approval},
            "request": request,
        }
        for vm_request in requests
    ]
    if needs_approval:
        audit.record_many(events)
    else:
        _approve(requests, actor="system:auto-approve", auto=True, events=events)
    return batch


def _approve(requests: list[VMRequest], *, actor, auto: bool, events: list[dict], request=None) -> list[VirtualMachine]:
    """Approve locked pending requests of one batch (same project, plan, image and
    hypervisor) together: what ``vm_request_approve`` does for one, in bulk statements;
    one create Operation per VM. ``events``: audit events to append before theirs."""
    first = requests[0]
    hypervisor_capacity_check(hypervisor=first.hypervisor, plan=first.plan, lock=True, count=len(requests))
    now = timezone.now()
    VMRequest.objects.filter(pk__in=[r.pk for r in requests]).update(
        status=RequestStatus.APPROVED, decided_by=None if isinstance(actor, str) else actor, decided_at=now
    )
    try:
        with transaction.atomic():
            vms = VirtualMachine.objects.bulk_create(
                VirtualMachine(
                    project_id=r.project_id,
                    owner_id=r.requester_id,
                    request=r,
                    name=r.name,
                    plan_id=r.plan_id,
                    image_id=r.image_id,
                    hypervisor_id=r.hypervisor_id,
                    ssh_public_key=r.ssh_public_key,
                    user_data=r.user_data,
                    status=VMStatus.BUILDING,
                    task_state=Action.CREATE,
                    status_changed_at=now,
                )
                for r in requests
            )
    except IntegrityError:
        raise Conflict("A VM with one of these names already exists in the project.", code="name_taken") from None
    for vm, r in zip(vms, requests, strict=True):
        vm.project, vm.hypervisor, vm.plan = r.project, r.hypervisor, r.plan  # no query per VM below
    ipam_allocate_for_vms(vms=vms)
    power = vms[0].power_state
    vm_timeline_append_many(vms=vms, status=VMStatus.BUILDING, power_state=power, at=now, source="approval")
    operation_create_many(vms=vms, action=Action.CREATE, requested_by=first.requester)  # one batch, one requester
    for vm, r in zip(vms, requests, strict=True):
        events.append(
            {
                "actor": actor,
                "action": "request.approved",
                "target": r,
                "project": r.project_id,
                "details": {"vm": vm.pk, "auto": auto, "batch": r.batch_id},
                "request": request,
            }
        )
        events.append(
            {
                "actor": r.requester,
                "action": "vm.create.requested",
                "target": vm,
                "project": r.project_id,
                "details": {"request": r.pk},
            }
        )
    audit.record_many(events)
    return vms


def _locked_pending_of(batch: VMBatch) -> list[VMRequest]:
    return list(
        VMRequest.objects.select_for_update(no_key=True, of=("self",))
        .select_related("plan", "image", "hypervisor", "project", "requester")
        .filter(batch=batch, status=RequestStatus.PENDING)
        .order_by("pk")
    )


@transaction.atomic
def vm_batch_approve(*, batch: VMBatch, actor, request=None) -> list[VirtualMachine]:
    """An operator approves every pending request of a batch at once."""
    _staff_required(actor)
    requests = _locked_pending_of(batch)
    if not requests:
        raise Conflict(f"Batch {batch} has no pending request.")
    return _approve(requests, actor=actor, auto=False, events=[], request=request)


@transaction.atomic
def vm_batch_reject(*, batch: VMBatch, actor, reason: str, request=None) -> int:
    """An operator rejects every pending request of a batch; their quota is given back."""
    _staff_required(actor)
    if not reason.strip():
        raise InvalidInput("Give the requester a reason.", fields={"reason": ["A reason is required."]})
    requests = _locked_pending_of(batch)
    if not requests:
        raise Conflict(f"Batch {batch} has no pending request.")
    VMRequest.objects.filter(pk__in=[r.pk for r in requests]).update(
        status=RequestStatus.REJECTED, decided_by=actor, decided_at=timezone.now(), reason=reason.strip()[:500]
    )
    quota_release(project=batch.project, plan=batch.plan, count=len(requests))
    audit.record_many(
        [
            {
                "actor": actor,
                "action": "request.rejected",
                "target": r,
                "project": r.project_id,
                "details": {"reason": reason.strip()[:500], "batch": batch.pk},
                "request": request,
            }
            for r in requests
        ]
    )
    return len(requests)
