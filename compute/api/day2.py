"""/api/v1/virtual-machines/<id>/snapshots/, /resize/ and /rebuild/: day-2 actions, each answered 202
with its operation (compute/services/day2.py). Mixed into VirtualMachineViewSet."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.security import check_recent_otp
from compute import selectors, services
from compute.models import Image, Plan, Snapshot, name_validator
from controlplane.api import IdField, JSONTypesMixin
from controlplane.errors import NotFound

from .serializers import ActionAcceptedSerializer


class SnapshotSerializer(serializers.ModelSerializer):
    class Meta:
        model = Snapshot
        fields = ["id", "name", "state", "size_bytes", "created_at", "missing_since"]


class SnapshotCreateSerializer(JSONTypesMixin, serializers.Serializer):
    # Not trimmed: the pattern in the schema is the whole rule (" db1" is refused, not cleaned).
    name = serializers.CharField(max_length=63, trim_whitespace=False, validators=[name_validator])


class ResizeSerializer(JSONTypesMixin, serializers.Serializer):
    plan = IdField(queryset=Plan.objects.filter(active=True), help_text="The plan to move to (/api/v1/plans/).")


class ResizeQuerySerializer(serializers.Serializer):
    """``GET .../resize/?plan=<id>``: the preview's one (required) parameter."""

    plan = serializers.PrimaryKeyRelatedField(
        queryset=Plan.objects.filter(active=True), help_text="The plan to preview (/api/v1/plans/)."
    )


class RebuildSerializer(serializers.Serializer):
    image = serializers.PrimaryKeyRelatedField(queryset=Image.objects.filter(active=True))
    ssh_public_key = serializers.CharField(required=False, allow_blank=True, max_length=16384)
    user_data = serializers.CharField(required=False, allow_blank=True, max_length=65536, trim_whitespace=False)


class ResizePreviewSerializer(serializers.Serializer):
    allowed = serializers.BooleanField()
    reason = serializers.CharField()
    changed = serializers.ListField(child=serializers.CharField())
    restart = serializers.BooleanField(help_text="A running VM is restarted by this resize.")


class VMDay2Mixin:
    """Needs ``get_object`` (the caller's VM, 404 otherwise) and ``accepted`` from the view module."""

    def _snapshot(self, vm, snapshot_id) -> Snapshot:
        snapshot = selectors.snapshot_list_for_vm(vm=vm).filter(pk=snapshot_id).first()
        if snapshot is None:
            raise NotFound("No such snapshot.")
        return snapshot

    @extend_schema(
        methods=["GET"], request=None, responses={200: SnapshotSerializer(many=True)}, description="The VM's snapshots."
    )
    @extend_schema(
        methods=["POST"],
        request=SnapshotCreateSerializer,
        responses={202: ActionAcceptedSerializer},
        description="Take a snapshot (409 at the plan's limit, while another action runs, or where the "
        "hypervisor has no snapshots).",
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None, filter_backends=[])
    def snapshots(self, request, pk=None):
        vm = self.get_object()
        if request.method == "GET":
            return Response(SnapshotSerializer(selectors.snapshot_list_for_vm(vm=vm), many=True).data)
        body = SnapshotCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        operation = services.vm_snapshot_create(
            vm=vm, name=body.validated_data["name"], user=request.user, request=request
        )
        return self.accepted(request, operation)

    @extend_schema(
        request=None,
        responses={202: ActionAcceptedSerializer},
        description="Roll the disk back to this snapshot (changes since are lost): needs a current two-factor "
        "code in X-OTP-Token from a user with 2FA.",
    )
    @action(detail=True, methods=["post"], url_path=r"snapshots/(?P<snapshot_id>\d+)/revert")
    def snapshot_revert(self, request, pk=None, snapshot_id=None):
        snapshot = self._snapshot(self.get_object(), snapshot_id)
        check_recent_otp(request)
        operation = services.vm_snapshot_revert(snapshot=snapshot, user=request.user, request=request)
        return self.accepted(request, operation)

    @extend_schema(request=None, responses={202: ActionAcceptedSerializer})
    @action(detail=True, methods=["delete"], url_path=r"snapshots/(?P<snapshot_id>\d+)")
    def snapshot_delete(self, request, pk=None, snapshot_id=None):
        snapshot = self._snapshot(self.get_object(), snapshot_id)
        operation = services.vm_snapshot_delete(snapshot=snapshot, user=request.user, request=request)
        return self.accepted(request, operation)

    @extend_schema(
        methods=["GET"],
        request=None,
        parameters=[ResizeQuerySerializer],
        responses={200: ResizePreviewSerializer},
        description="What resizing to ?plan=<id> would do: allowed or why not, and whether the VM is restarted.",
    )
    @extend_schema(methods=["POST"], request=ResizeSerializer, responses={202: ActionAcceptedSerializer})
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def resize(self, request, pk=None):
        vm = self.get_object()
        serializer = ResizeSerializer if request.method == "POST" else ResizeQuerySerializer
        body = serializer(data=request.data if request.method == "POST" else request.query_params)
        body.is_valid(raise_exception=True)
        plan = body.validated_data["plan"]
        if request.method == "GET":
            return Response(services.resize_preview(vm=vm, plan=plan))
        return self.accepted(request, services.vm_resize(vm=vm, plan=plan, user=request.user, request=request))

    @extend_schema(
        request=RebuildSerializer,
        responses={202: ActionAcceptedSerializer},
        description="Replace the disk from an image of the same guest type (keeps id, addresses and plan; "
        "optional new SSH key and user data). Destroys the disk's data: a user with 2FA sends a current "
        "code in X-OTP-Token.",
    )
    @action(detail=True, methods=["post"])
    def rebuild(self, request, pk=None):
        vm = self.get_object()
        body = RebuildSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        check_recent_otp(request)
        data = body.validated_data
        operation = services.vm_rebuild(
            vm=vm,
            image=data["image"],
            ssh_public_key=data.get("ssh_public_key"),
            user_data=data.get("user_data"),
            user=request.user,
            request=request,
        )
        return self.accepted(request, operation)
