"""Portal pages of the compute domain: VMs (list, detail with live operations,
power actions, delete; the Snapshots and Settings tabs: snapshots, resize),
requests (list, cancel), operation retry / cancel.

Every page is scoped to a project the user is a member of
(accounts.views.common.with_project; viewers look, members act): another
project's VM or request is a 404. Writes go through services; their errors
become messages (accounts.views.common.portal_errors), never a 500. Pages poll with
htmx only while something is in progress (see templates/compute/_vm_live.html).
"""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.choices import Role, role_at_least
from accounts.security import require_recent_otp
from accounts.views.common import with_project
from controlplane.errors import InvalidInput, NotFound

from . import capabilities, selectors, services
from .choices import ACTION_ALLOWED_FROM, Action, RequestStatus, SnapshotState, VMStatus
from .services import ipam, rdns
from .views_backups import backups_context

PAGE_SIZE = 50
POWER_ACTIONS = (Action.START, Action.STOP, Action.REBOOT)


def _live_signature(vm, operations) -> str:
    """What the live region last announced; a change is read out to screen readers."""
    active = next((op for op in operations if op.is_active), None)
    progress = f"{active.state}:{active.progress}" if active else ""
    return f"{vm.status}:{vm.task_state or ''}:{progress}"


@with_project()
def vm_list(request, project):
    status = request.GET.get("status", "")
    vms = selectors.vm_list_for_project(project=project, include_deleted=status == VMStatus.DELETED)
    if status in VMStatus.values:
        vms = vms.filter(status=status)
    page = Paginator(vms, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "project": project,
        "page": page,
        "status": status,
        "statuses": VMStatus.choices,
        "busy": any(vm.task_state for vm in page),
        "can_request": role_at_least(project.role, Role.MEMBER),
    }
    template = "compute/_vm_table.html" if request.htmx else "compute/vm_list.html"
    return render(request, template, context)


@with_project()
def vm_detail(request, project, pk):
    vm = selectors.vm_get_for_project(project=project, pk=pk)
    operations = selectors.operation_list_for_vm(vm=vm)
    signature = _live_signature(vm, operations)
    can_act = role_at_least(project.role, Role.MEMBER)
    context = {
        "project": project,
        "vm": vm,
        "operations": operations,
        "busy": bool(vm.task_state) or any(op.is_active for op in operations),
        "can_act": can_act,
        "power_actions": [a for a in POWER_ACTIONS if vm.status in ACTION_ALLOWED_FROM[a]] if can_act else [],
        "can_delete": can_act and vm.status in ACTION_ALLOWED_FROM[Action.DELETE],
        "signature": signature,
        "announce": request.htmx and request.GET.get("seen") != signature,
        "rdns_on": rdns.rdns_enabled(),
        **_day2_context(vm, can_act),
        **backups_context(vm, can_act),
    }
    template = "compute/_vm_live.html" if request.htmx else "compute/vm_detail.html"
    return render(request, template, context)


def _day2_context(vm, can_act: bool) -> dict:
    """The Snapshots and Settings tabs: what this VM's hypervisor supports and the resize choices,
    each with its preview (refused and why, or whether a running VM is restarted)."""
    kind = vm.hypervisor.kind
    snapshots_on = capabilities.supports(kind, capabilities.SNAPSHOTS)
    resize_on = capabilities.supports(kind, capabilities.RESIZE)
    rebuild_on = capabilities.supports(kind, capabilities.REBUILD)
    context = {
        "snapshots_supported": snapshots_on,
        "snapshots": list(selectors.snapshot_list_for_vm(vm=vm)) if snapshots_on else [],
        "snapshot_available": SnapshotState.AVAILABLE,
        "can_snapshot": can_act and snapshots_on and vm.status in ACTION_ALLOWED_FROM[Action.SNAPSHOT_CREATE],
        "resize_supported": resize_on,
        "resize_choices": [],
        "rebuild_supported": rebuild_on,
        "rebuild_images": [],
    }
    if can_act and rebuild_on and vm.status in ACTION_ALLOWED_FROM[Action.REBUILD]:
        context["rebuild_images"] = list(selectors.image_list_for_rebuild(vm=vm))
    if can_act and resize_on and vm.status in ACTION_ALLOWED_FROM[Action.RESIZE]:
        plans = selectors.plan_list_offered().filter(guest_type=vm.plan.guest_type).exclude(pk=vm.plan_id)
        context["resize_choices"] = [(plan, services.resize_preview(vm=vm, plan=plan)) for plan in plans]
    return context


def _after_action(request, project, vm):
    return redirect("compute:vm_detail", slug=project.slug, pk=vm.pk)


@require_POST
@with_project(Role.MEMBER)
def vm_power(request, project, pk):
    """Start, stop or reboot (the confirmation is on the page, before this POST)."""
    vm = selectors.vm_get_for_project(project=project, pk=pk)
    action = request.POST.get("action", "")
    if action not in POWER_ACTIONS:
        raise InvalidInput("Choose start, stop or reboot.")
    services.vm_action(vm=vm, action=action, user=request.user, request=request)
    messages.success(request, f"{Action(action).label} of {vm.name} requested.")
    return _after_action(request, project, vm)


@require_POST
@with_project(Role.MEMBER)
@require_recent_otp
def vm_delete(request, project, pk):
    """Delete asks for a fresh two-factor code (require_recent_otp) and the VM's name."""
    vm = selectors.vm_get_for_project(project=project, pk=pk)
    if request.POST.get("confirm_name", "").strip() != vm.name:
        raise InvalidInput(f"Type the VM's name ({vm.name}) to confirm the deletion.")
    services.vm_action(vm=vm, action=Action.DELETE, user=request.user, request=request)
    messages.success(request, f"Deletion of {vm.name} requested: its disks are destroyed with it.")
    return _after_action(request, project, vm)


@require_POST
@with_project(Role.MEMBER)
def vm_ptr_set(request, project, pk):
    """The reverse DNS name of one address (compute/services/rdns.py); refusals come back as messages."""
    vm = selectors.vm_get_for_project(project=project, pk=pk)
    address = request.POST.get("address", "")
    record = rdns.rdns_ptr_set(
        vm=vm, address=address, ptr=request.POST.get("ptr", ""), user=request.user, request=request
    )
    shown = record.ptr if record and record.ptr else "none"
    messages.success(request, f"Reverse DNS of {address} set to {shown}; the DNS server has it within a minute.")
    return _after_action(request, project, vm)


@require_POST
@with_project(Role.MEMBER)
def vm_extra_ip(request, project, pk):
    """Add (``family``) or give back (``remove`` = address) an additional IP, the plan's priced add-on."""
    vm = selectors.vm_get_for_project(project=project, pk=pk)
    if request.POST.get("remove"):
        ipam.vm_extra_ip_remove(vm=vm, address=request.POST["remove"], user=request.user, request=request)
        messages.success(request, f"{request.POST['remove']} given back; it is no longer billed.")
    else:
        family = 6 if request.POST.get("family") == "6" else 4
        allocation = ipam.vm_extra_ip_add(vm=vm, family=family, user=request.user, request=request)
        messages.success(request, f"{allocation.address} added to {vm.name}: configure it inside the guest.")
    return _after_action(request, project, vm)


@require_POST
@with_project(Role.MEMBER)
def vm_snapshot_create(request, project, pk):
    vm = selectors.vm_get_for_project(project=project, pk=pk)
    services.vm_snapshot_create(vm=vm, name=request.POST.get("name", ""), user=request.user, request=request)
    messages.success(request, f"Snapshot of {vm.name} requested.")
    return _after_action(request, project, vm)


def _snapshot(project, pk, snapshot_pk):
    vm = selectors.vm_get_for_project(project=project, pk=pk)
    snapshot = selectors.snapshot_list_for_vm(vm=vm).filter(pk=snapshot_pk).first()
    if snapshot is None:
        raise NotFound("No such snapshot.")
    return vm, snapshot


@require_POST
@with_project(Role.MEMBER)
@require_recent_otp
def vm_snapshot_revert(request, project, pk, snapshot_pk):
    """Revert loses everything written since the snapshot: a fresh two-factor code, like delete."""
    vm, snapshot = _snapshot(project, pk, snapshot_pk)
    services.vm_snapshot_revert(snapshot=snapshot, user=request.user, request=request)
    messages.success(request, f"Revert of {vm.name} to {snapshot.name} requested.")
    return _after_action(request, project, vm)


@require_POST
@with_project(Role.MEMBER)
def vm_snapshot_delete(request, project, pk, snapshot_pk):
    vm, snapshot = _snapshot(project, pk, snapshot_pk)
    services.vm_snapshot_delete(snapshot=snapshot, user=request.user, request=request)
    messages.success(request, f"Deletion of snapshot {snapshot.name} requested.")
    return _after_action(request, project, vm)


@require_POST
@with_project(Role.MEMBER)
def vm_resize(request, project, pk):
    vm = selectors.vm_get_for_project(project=project, pk=pk)
    plan = selectors.plan_list_offered().filter(pk=request.POST.get("plan") or None).first()
    if plan is None:
        raise InvalidInput("Choose a plan to resize to.")
    services.vm_resize(vm=vm, plan=plan, user=request.user, request=request)
    messages.success(request, f"Resize of {vm.name} to {plan.name} requested.")
    return _after_action(request, project, vm)


@require_POST
@with_project(Role.MEMBER)
@require_recent_otp
def vm_rebuild(request, project, pk):
    """Rebuild destroys the disk: a fresh two-factor code and the VM's name, like delete.
    An empty SSH key / user data field keeps the VM's current one."""
    vm = selectors.vm_get_for_project(project=project, pk=pk)
    if request.POST.get("confirm_name", "").strip() != vm.name:
        raise InvalidInput(f"Type the VM's name ({vm.name}) to confirm the rebuild.")
    image = selectors.image_list_for_rebuild(vm=vm).filter(pk=request.POST.get("image") or None).first()
    if image is None:
        raise InvalidInput("Choose an image to rebuild from.")
    services.vm_rebuild(
        vm=vm,
        image=image,
        ssh_public_key=request.POST.get("ssh_public_key", "").strip() or None,
        user_data=request.POST.get("user_data", "") or None,
        user=request.user,
        request=request,
    )
    messages.success(request, f"Rebuild of {vm.name} from {image.name} requested: its disk is replaced.")
    return _after_action(request, project, vm)


def _operation(request, project, pk):
    operation = selectors.operation_list_for_user(user=request.user).filter(project=project, pk=pk).first()
    if operation is None or operation.vm is None:
        raise NotFound("No such operation.")
    return operation


@require_POST
@with_project(Role.MEMBER)
def operation_retry(request, project, pk):
    operation = _operation(request, project, pk)
    services.operation_retry(operation=operation, actor=request.user)
    messages.success(request, f"{operation.get_action_display()} of {operation.vm.name} will run again.")
    return _after_action(request, project, operation.vm)


@require_POST
@with_project(Role.MEMBER)
def operation_cancel(request, project, pk):
    operation = _operation(request, project, pk)
    services.operation_cancel(operation=operation, actor=request.user)
    messages.success(request, f"{operation.get_action_display()} of {operation.vm.name} cancelled.")
    return _after_action(request, project, operation.vm)


@with_project()
def request_list(request, project):
    page = Paginator(selectors.vm_request_list_for_project(project=project), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        "project": project,
        "page": page,
        "can_request": role_at_least(project.role, Role.MEMBER),
        "is_admin": role_at_least(project.role, Role.ADMIN),
        "pending": RequestStatus.PENDING,
        # A pending request's row refreshes itself until an operator decides (like the VM list).
        "busy": any(r.status == RequestStatus.PENDING for r in page),
    }
    template = "compute/_request_table.html" if request.htmx else "compute/request_list.html"
    return render(request, template, context)


@require_POST
@with_project(Role.MEMBER)
def request_cancel(request, project, pk):
    vm_request = selectors.vm_request_get_for_project(project=project, pk=pk)
    services.vm_request_cancel(vm_request=vm_request, user=request.user, request=request)
    messages.success(request, f"Request for {vm_request.name} cancelled; its quota is free again.")
    return redirect("compute:request_list", slug=project.slug)
