"""VM requests and their approval."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

import audit
from accounts.choices import Role
from accounts.selectors import project_require_role, ssh_key_get_available
from accounts.sshkeys import InvalidSSHKey, ssh_key_parse
from compute.choices import Action, GuestType, RequestStatus, VMStatus
from compute.models import Hypervisor, Image, ImageReference, Plan, VirtualMachine, VMRequest
from controlplane.errors import Conflict, Forbidden, InvalidInput, NotFound

from .. import admission
from .capacity import hypervisor_capacity_check
from .ipam import ipam_allocate_for_vm
from .operations import operation_create
from .quotas import quota_release, quota_reserve
from .writeback import vm_timeline_append

MAX_USER_DATA_BYTES = 16 * 1024


def _validate(*, plan: Plan, image: Image, hypervisor: Hypervisor, ssh_public_key: str, user_data: str) -> None:
    errors = {}
    if not plan.active:
        errors["plan"] = [f"Plan {plan.name} is no longer offered."]
    if not image.active:
        errors["image"] = [f"Image {image.name} is no longer offered."]
    elif image.guest_type != plan.guest_type:
        kind = GuestType(plan.guest_type).label.lower()
        errors["image"] = [f"Image {image.name} cannot be used with plan {plan.name}, which is a {kind} plan."]
    if not hypervisor.enabled:
        errors["hypervisor"] = [f"{hypervisor.name} does not take new VMs."]
    elif "image" not in errors and not ImageReference.objects.filter(image=image, hypervisor=hypervisor).exists():
        errors["image"] = [f"Image {image.name} is not available on {hypervisor.name}."]
    if ssh_public_key.strip():
        try:
            ssh_key_parse(ssh_public_key)
        except InvalidSSHKey as exc:
            errors["ssh_public_key"] = [str(exc)]
    if len(user_data.encode()) > MAX_USER_DATA_BYTES:
        errors["user_data"] = [f"User data is limited to {MAX_USER_DATA_BYTES // 1024} KiB."]
    if errors:
        raise InvalidInput("; ".join(m for msgs in errors.values() for m in msgs), fields=errors)


def _saved_key_text(*, user, project, ssh_key_id: int | None, ssh_public_key: str) -> str:
    """The key text to install: pasted, or copied from the key library (the VM keeps the copy)."""
    if ssh_key_id is None:
        return ssh_public_key
    if ssh_public_key.strip():
        message = "Choose a saved key or paste one, not both."
        raise InvalidInput(message, fields={"ssh_key": [message]})
    try:
        return ssh_key_get_available(user=user, project=project, pk=ssh_key_id).public_key
    except NotFound as exc:
        raise InvalidInput(exc.message, fields={"ssh_key": [exc.message]}) from None


def _check_not_suspended(project) -> None:
    if project.is_suspended:
        raise Conflict(
            f"Project {project.name} is suspended: {project.suspended_reason or 'see billing'}.",
            code="project_suspended",
        )


def names_taken(project, names: list[str]) -> set[str]:
    """Which of ``names`` a live VM or a pending request of the project already has."""
    vms = VirtualMachine.objects.filter(project=project, name__in=names).exclude(status=VMStatus.DELETED)
    pending = VMRequest.objects.filter(project=project, name__in=names, status=RequestStatus.PENDING)
    return set(vms.values_list("name", flat=True)) | set(pending.values_list("name", flat=True))


def _check_name_free(project, name: str) -> None:
    if names_taken(project, [name]):
        raise Conflict(
            f"A VM or pending request named {name!r} already exists in {project.name}.",
            code="name_taken",
            fields={"name": ["This name is taken in the project."]},
        )


@transaction.atomic
def vm_request_create(
    *,
    user,
    project,
    plan: Plan,
    image: Image,
    hypervisor: Hypervisor,
    name: str,
    ssh_public_key: str = "",
    ssh_key_id: int | None = None,
    user_data: str = "",
    request=None,
) -> VMRequest:
    """Ask for a VM. Reserves quota at once; approves at once when the plan needs no
    approval or the user is trusted. ``ssh_key_id`` picks a saved key instead of a pasted one."""
    project_require_role(user=user, project=project, role=Role.MEMBER)
    ssh_public_key = _saved_key_text(user=user, project=project, ssh_key_id=ssh_key_id, ssh_public_key=ssh_public_key)
    _check_not_suspended(project)
    _validate(plan=plan, image=image, hypervisor=hypervisor, ssh_public_key=ssh_public_key, user_data=user_data)
    admission.run_checks(project=project, plan=plan)
    hypervisor_capacity_check(hypervisor=hypervisor, plan=plan, lock=True)  # before anything audits
    _check_name_free(project, name)
    quota_reserve(project=project, plan=plan)
    try:
        with transaction.atomic():
            vm_request = VMRequest.objects.create(
                project=project,
                requester=user,
                plan=plan,
                image=image,
                hypervisor=hypervisor,
                name=name,
                ssh_public_key=ssh_public_key.strip(),
                user_data=user_data,
            )
    except IntegrityError:
        raise Conflict(f"A pending request named {name!r} already exists.", code="name_taken") from None
    audit.record(
        actor=user,
        action="request.created",
        target=vm_request,
        project=project,
        details={
            "plan": plan.name,
            "image": image.name,
            "hypervisor": hypervisor.name,
            "needs_approval": plan.requires_approval and not user.is_trusted,
        },
        request=request,
    )
    if not plan.requires_approval or user.is_trusted:
        vm_request_approve(vm_request=vm_request, actor="system:auto-approve", auto=True)
        vm_request.refresh_from_db()
    return vm_request


def _locked_pending(vm_request: VMRequest) -> VMRequest:
    locked = (
        VMRequest.objects.select_for_update(no_key=True, of=("self",))
        .select_related("plan", "image", "hypervisor", "project", "requester")
        .get(pk=vm_request.pk)
    )
    if locked.status != RequestStatus.PENDING:
        raise Conflict(f"Request {locked.name} is already {locked.get_status_display().lower()}.")
    return locked


@transaction.atomic
def vm_request_approve(*, vm_request: VMRequest, actor, auto: bool = False, request=None) -> VirtualMachine:
    """Approve: the VM and its create Operation are created in this transaction."""
    vm_request = _locked_pending(vm_request)
    hypervisor_capacity_check(hypervisor=vm_request.hypervisor, plan=vm_request.plan, lock=True)
    now = timezone.now()
    VMRequest.objects.filter(pk=vm_request.pk).update(
        status=RequestStatus.APPROVED, decided_by=None if isinstance(actor, str) else actor, decided_at=now
    )
    vm_request.status = RequestStatus.APPROVED
    try:
        with transaction.atomic():
            vm = VirtualMachine.objects.create(
                project=vm_request.project,
                owner=vm_request.requester,
                request=vm_request,
                name=vm_request.name,
                plan=vm_request.plan,
                image=vm_request.image,
                hypervisor=vm_request.hypervisor,
                ssh_public_key=vm_request.ssh_public_key,
                user_data=vm_request.user_data,
                status=VMStatus.BUILDING,
                task_state=Action.CREATE,
                status_changed_at=now,
            )
    except IntegrityError:
        raise Conflict(f"A VM named {vm_request.name!r} already exists in the project.", code="name_taken") from None
    ipam_allocate_for_vm(vm=vm)
    vm_timeline_append(vm=vm, status=VMStatus.BUILDING, power_state=vm.power_state, at=now, source="approval")
    operation_create(vm=vm, action=Action.CREATE, requested_by=vm_request.requester)
    audit.record(
        actor=actor,
        action="request.approved",
        target=vm_request,
        project=vm_request.project,
        details={"vm": vm.pk, "auto": auto},
        request=request,
    )
    audit.record(
        actor=vm_request.requester,
        action="vm.create.requested",
        target=vm,
        project=vm_request.project,
        details={"request": vm_request.pk},
    )
    return vm


def _staff_required(actor) -> None:
    if isinstance(actor, str):
        return
    if not (actor.is_staff or actor.is_superuser):
        raise Forbidden("Only operators can decide on requests.")


@transaction.atomic
def vm_request_reject(*, vm_request: VMRequest, actor, reason: str, request=None) -> VMRequest:
    _staff_required(actor)
    if not reason.strip():
        raise InvalidInput("Give the requester a reason.", fields={"reason": ["A reason is required."]})
    vm_request = _locked_pending(vm_request)
    VMRequest.objects.filter(pk=vm_request.pk).update(
        status=RequestStatus.REJECTED, decided_by=actor, decided_at=timezone.now(), reason=reason.strip()[:500]
    )
    quota_release(project=vm_request.project, plan=vm_request.plan)
    vm_request.refresh_from_db()
    audit.record(
        actor=actor,
        action="request.rejected",
        target=vm_request,
        project=vm_request.project,
        details={"reason": vm_request.reason},
        request=request,
    )
    return vm_request


@transaction.atomic
def vm_request_cancel(*, vm_request: VMRequest, user, request=None) -> VMRequest:
    """The requester (or a project admin) withdraws a pending request."""
    role = project_require_role(user=user, project=vm_request.project, role=Role.MEMBER)
    if vm_request.requester_id != user.pk and role not in (Role.OWNER, Role.ADMIN):
        raise Forbidden("Only the requester or a project admin can cancel this request.")
    vm_request = _locked_pending(vm_request)
    VMRequest.objects.filter(pk=vm_request.pk).update(status=RequestStatus.CANCELLED, decided_at=timezone.now())
    quota_release(project=vm_request.project, plan=vm_request.plan)
    vm_request.refresh_from_db()
    audit.record(actor=user, action="request.cancelled", target=vm_request, project=vm_request.project, request=request)
    return vm_request


def vm_request_approve_as_staff(*, vm_request: VMRequest, actor, request=None) -> VirtualMachine:
    _staff_required(actor)
    return vm_request_approve(vm_request=vm_request, actor=actor, request=request)
