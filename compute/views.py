"""Portal pages of the compute domain: VMs (list, detail with live operations,
power actions, delete), requests (list, cancel), operation retry / cancel.

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

from . import selectors, services
from .choices import ACTION_ALLOWED_FROM, Action, RequestStatus, VMStatus

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
    }
    template = "compute/_vm_live.html" if request.htmx else "compute/vm_detail.html"
    return render(request, template, context)


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
    }
    return render(request, "compute/request_list.html", context)


@require_POST
@with_project(Role.MEMBER)
def request_cancel(request, project, pk):
    vm_request = selectors.vm_request_get_for_project(project=project, pk=pk)
    services.vm_request_cancel(vm_request=vm_request, user=request.user, request=request)
    messages.success(request, f"Request for {vm_request.name} cancelled; its quota is free again.")
    return redirect("compute:request_list", slug=project.slug)
