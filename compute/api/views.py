"""/api/v1/ for the compute domain. Every queryset is scoped to the caller's
projects (operators see everything), so another project's object is a 404."""

import django_filters
from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.choices import Role
from accounts.security import check_recent_otp
from accounts.selectors import project_require_role
from compute import selectors, services
from compute.choices import Action
from compute.models import Hypervisor, Image, ImageReference, Operation, Plan, VirtualMachine, VMRequest
from controlplane.api import CountedPagination, IdFilter, SlugFilter, with_total
from controlplane.compiled import CompiledQuery

from .backups import VMBackupMixin
from .day2 import VMDay2Mixin
from .network import VMNetworkMixin
from .serializers import (
    ActionAcceptedSerializer,
    HypervisorSerializer,
    ImageSerializer,
    OperationSerializer,
    PlanSerializer,
    RejectSerializer,
    VirtualMachineSerializer,
    VMRequestSerializer,
)


def accepted(request, operation) -> Response:
    """202 with the operation and its URL in the body and the Location header."""
    body = {"operation": OperationSerializer(operation, context={"request": request}).data}
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["operation"]["url"]})


class PlanViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = PlanSerializer
    queryset = Plan.objects.filter(active=True)
    pagination_class = None


class ImageViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ImageSerializer
    pagination_class = None

    def get_queryset(self):
        refs = ImageReference.objects.select_related("hypervisor").filter(hypervisor__enabled=True)
        return Image.objects.filter(active=True).prefetch_related(Prefetch("references", queryset=refs))


class HypervisorViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = HypervisorSerializer
    queryset = Hypervisor.objects.filter(enabled=True)
    pagination_class = None


class VMRequestViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = VMRequestSerializer
    queryset = VMRequest.objects.none()  # for the schema; get_queryset scopes to the caller
    filterset_fields = ["status"]

    def get_queryset(self):
        user = self.request.user
        if user.is_staff:
            return VMRequest.objects.select_related("project", "requester", "decided_by", "vm").all()
        return selectors.vm_request_list_for_user(user=user).select_related("vm")

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.vm_request_create(
            user=self.request.user,
            project=data["project"],
            plan=data["plan"],
            image=data["image"],
            hypervisor=data["hypervisor"],
            name=data["name"],
            ssh_public_key=data.get("ssh_public_key", ""),
            ssh_key_id=data.get("ssh_key"),
            user_data=data.get("user_data", ""),
            request=self.request,
        )

    @extend_schema(request=None, responses={200: VMRequestSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        vm_request = services.vm_request_cancel(vm_request=self.get_object(), user=request.user, request=request)
        return Response(self.get_serializer(vm_request).data)

    @extend_schema(request=None, responses={200: VMRequestSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        vm_request = self.get_object()
        services.vm_request_approve_as_staff(vm_request=vm_request, actor=request.user, request=request)
        vm_request.refresh_from_db()
        return Response(self.get_serializer(vm_request).data)

    @extend_schema(request=RejectSerializer, responses={200: VMRequestSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        body = RejectSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        vm_request = services.vm_request_reject(
            vm_request=self.get_object(), actor=request.user, reason=body.validated_data["reason"], request=request
        )
        return Response(self.get_serializer(vm_request).data)


class VirtualMachineFilter(django_filters.FilterSet):
    project__slug = SlugFilter(field_name="project__slug", help_text="Only this project's VMs.")

    class Meta:
        model = VirtualMachine
        fields = ["status", "power_state", "project__slug"]


# What VirtualMachineSerializer reads of a VM and of its joined rows (issue 25: not the plan's
# prices, the project's billing details, the VM's keys and user data).
LIST_COLUMNS = VirtualMachineSerializer.columns()
LIST_VALUES = VirtualMachineSerializer.columns(values=True)
LIST_ID = LIST_VALUES.index("id")


def _page_rows(*user_id) -> QuerySet:
    """The VM list's page statement before its LIMIT/OFFSET: a member's (``user_id``) or, with
    no argument, staff's, as ``VirtualMachineViewSet.list`` reads it with no filter given."""
    visible = selectors.vms_visible(user_id=user_id[0] if user_id else None)
    # Counted without the joins the columns need (every one is a NOT NULL foreign key): the
    # planner then plans and runs the count over the VMs alone.
    return with_total(visible.values_list(*LIST_VALUES), visible)


# By staff or not: the page statement compiled once per process (controlplane/compiled.py).
_PAGE = {False: CompiledQuery(_page_rows, probe=(-(2**40),)), True: CompiledQuery(_page_rows, probe=())}

# The actions that only hand the VM to services.vm_action.
VM_ACTIONS = ("start", "stop", "reboot", "destroy")


class VirtualMachineViewSet(VMDay2Mixin, VMBackupMixin, VMNetworkMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = VirtualMachineSerializer
    queryset = VirtualMachine.objects.none()
    filterset_class = VirtualMachineFilter
    ordering_fields = ["name", "created_at", "status"]
    pagination_class = CountedPagination

    def get_queryset(self):
        user = self.request.user
        if user.is_staff:
            queryset = VirtualMachine.objects.select_related("project", "plan", "image", "hypervisor").prefetch_related(
                selectors.assigned_addresses_prefetch()
            )
        else:
            queryset = selectors.vm_list_for_user(user=user)
        if self.action in VM_ACTIONS:
            # Read when vm_action_by_id takes nothing, and for a delete: its id and project (the role check).
            return queryset.select_related(None).prefetch_related(None).select_related("project").only("id", "project")
        if self.request.method != "GET":
            return queryset.prefetch_related(None)  # an action answers with its operation, not the VM's addresses
        if self.action in ("list", "retrieve"):  # the columns the serializer shows, not keys and user data
            return queryset.only(*LIST_COLUMNS)
        return queryset

    def list(self, request, *args, **kwargs):
        """A page of VMs in two statements after the token: the rows with their total
        (``CountedPagination``) as tuples, not ~250 model instances, and their addresses
        (issue 25). The body is the one ``VirtualMachineSerializer`` gives for model rows.

        With no query parameter but a page number (the usual request) there is nothing for
        the filter backends to do (no filter given, no default ordering: the model's), and the
        page's statement is the same every time but for the user and the offset: it is
        compiled once per process (``_PAGE``), not built and compiled per request."""
        paginator = self.paginator
        page_param = paginator.page_query_param
        user_id = None if request.user.is_staff else request.user.pk
        if (
            set(request.query_params) <= {page_param}
            and request.query_params.get(page_param) not in paginator.last_page_strings
        ):
            args = () if user_id is None else (user_id,)
            page = paginator.paginate_queryset(
                None,
                request,
                view=self,
                fetch=lambda offset, limit: _PAGE[user_id is None].rows(*args, offset=offset, limit=limit),
            )
        else:
            queryset = self.filter_queryset(selectors.vms_visible(user_id=user_id))
            page = paginator.paginate_queryset(queryset.values_list(*LIST_VALUES), request, view=self, counted=queryset)
        addresses = selectors.assigned_addresses_by_vm(vm_ids=[row[LIST_ID] for row in page])
        rows = self.get_serializer().rows(page, addresses)
        return paginator.get_paginated_response(rows)

    def accepted(self, request, operation) -> Response:
        return accepted(request, operation)

    def _act(self, request, action_name):
        """The VM is not read before the statement that takes it (services.vm_action_by_id); only
        when that fails is it looked up as DRF would (get_object: a 404 if not visible), which
        also applies the list's filters when the URL has a query string, so one skips the take."""
        pk = self.kwargs[self.lookup_url_kwarg or self.lookup_field]
        vm_id = int(pk) if pk.isascii() and pk.isdigit() and not request.query_params else None
        operation = services.vm_action_by_id(
            vm_id=vm_id, action=action_name, user=request.user, vm_get=self.get_object, request=request
        )
        return accepted(request, operation)

    @extend_schema(request=None, responses={202: ActionAcceptedSerializer})
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        return self._act(request, Action.START)

    @extend_schema(request=None, responses={202: ActionAcceptedSerializer})
    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        return self._act(request, Action.STOP)

    @extend_schema(request=None, responses={202: ActionAcceptedSerializer})
    @action(detail=True, methods=["post"])
    def reboot(self, request, pk=None):
        return self._act(request, Action.REBOOT)

    @extend_schema(
        request=None,
        responses={202: ActionAcceptedSerializer},
        description="Delete the VM and its disks. A user with two-factor authentication must send a current "
        "code in the X-OTP-Token header (or have entered one in this session in the last minutes).",
    )
    def destroy(self, request, pk=None):
        # Read first: the two-factor check comes after the 404 and before the transaction (a
        # code's use and a wrong code's throttling are written even when the delete is refused).
        vm = self.get_object()
        check_recent_otp(request)
        operation = services.vm_action(vm=vm, action=Action.DELETE, user=request.user, request=request)
        return accepted(request, operation)


class OperationFilter(django_filters.FilterSet):
    vm = IdFilter(field_name="vm_id", help_text="Only this VM's operations (an unknown id gives an empty list).")

    class Meta:
        model = Operation
        fields = ["state", "action", "vm"]


class OperationViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = OperationSerializer
    queryset = Operation.objects.none()
    filterset_class = OperationFilter

    def get_queryset(self):
        user = self.request.user
        if user.is_staff:
            return Operation.objects.select_related("vm", "hypervisor", "requested_by").all()
        return selectors.operation_list_for_user(user=user)

    def _check_member(self, operation):
        project_require_role(user=self.request.user, project=operation.project, role=Role.MEMBER, staff_override=True)

    @extend_schema(request=None, responses={202: ActionAcceptedSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        operation = self.get_object()
        self._check_member(operation)
        return accepted(request, services.operation_retry(operation=operation, actor=request.user))

    @extend_schema(request=None, responses={200: OperationSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        operation = self.get_object()
        self._check_member(operation)
        operation = services.operation_cancel(operation=operation, actor=request.user)
        return Response(self.get_serializer(operation).data)
