from django.db.models import QuerySet

from accounts.models import User

from .choices import ACTIVE_OPERATION_STATES
from .models import Hypervisor, Operation, VirtualMachine, VMRequest


def hypervisor_queues() -> list[str]:
    return sorted(set(Hypervisor.objects.filter(enabled=True).values_list("queue", flat=True)))


def vm_list_for_user(*, user: User) -> QuerySet[VirtualMachine]:
    return (
        VirtualMachine.objects.filter(project__memberships__user=user)
        .select_related("plan", "image", "hypervisor", "project")
        .distinct()
    )


def vm_request_list_for_user(*, user: User) -> QuerySet[VMRequest]:
    return (
        VMRequest.objects.filter(project__memberships__user=user)
        .select_related("plan", "image", "hypervisor", "project", "requester", "decided_by")
        .distinct()
    )


def operation_list_for_user(*, user: User) -> QuerySet[Operation]:
    return (
        Operation.objects.filter(project__memberships__user=user)
        .select_related("vm", "hypervisor", "requested_by")
        .distinct()
    )


def operation_active_for_vm(*, vm: VirtualMachine) -> Operation | None:
    return vm.operations.filter(state__in=ACTIVE_OPERATION_STATES).first()
