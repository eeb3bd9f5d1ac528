"""/api/v1/vm-batches/: N VM requests at once (compute/services/batches.py), with progress."""

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from compute import selectors, services
from compute.models import VMBatch
from compute.services.batches import MAX_BATCH_SIZE

from .serializers import NewVMFieldsMixin, RejectSerializer

PROGRESS_FIELDS = ("requested", *selectors.BATCH_PROGRESS)
ProgressSerializer = inline_serializer(
    name="VMBatchProgress", fields={name: serializers.IntegerField() for name in PROGRESS_FIELDS}
)


# Every name a pattern gives is a valid VM name (at most 63 characters with a 7-digit number).
NAME_PATTERN = r"^([a-z0-9][a-z0-9-]*)?\{n\}([a-z0-9-]*[a-z0-9])?$"


@extend_schema_field({"type": "string", "maxLength": 59, "pattern": NAME_PATTERN})
class NamePatternField(serializers.CharField):
    """``lab-{n}``: lowercase letters, digits and hyphens around one ``{n}``."""

    def __init__(self, **kwargs):
        super().__init__(max_length=59, **kwargs)
        self.validators.append(
            RegexValidator(NAME_PATTERN, "Lowercase letters, digits and hyphens around one {n}, such as lab-{n}.")
        )


class VMBatchSerializer(NewVMFieldsMixin, serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="vmbatch-detail")
    name_pattern = NamePatternField(help_text="VM names, {n} replaced by the number: lab-{n} gives lab-1, lab-2, ...")
    count = serializers.IntegerField(min_value=1, max_value=MAX_BATCH_SIZE, help_text="How many VMs.")
    first_number = serializers.IntegerField(min_value=0, max_value=1_000_000, default=1)
    ssh_public_key = serializers.CharField(required=False, allow_blank=True, write_only=True, default="")
    user_data = serializers.CharField(required=False, allow_blank=True, write_only=True, default="")
    progress = serializers.SerializerMethodField()

    class Meta:
        model = VMBatch
        fields = [
            "id",
            "url",
            "project",
            "plan",
            "image",
            "hypervisor",
            "name_pattern",
            "first_number",
            "count",
            "ssh_public_key",
            "ssh_key",
            "user_data",
            "requester",
            "created_at",
            "progress",
        ]
        read_only_fields = ["created_at"]

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, batch) -> dict:
        return selectors.vm_batch_progress(batch)


class VMBatchViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """A batch: ``count`` VMs named from ``name_pattern``, accepted all or none (201), each VM
    then built by its own operation. ``progress`` counts its requests and VMs by state."""

    serializer_class = VMBatchSerializer
    queryset = VMBatch.objects.none()  # for the schema; get_queryset scopes to the caller

    def get_queryset(self):
        return selectors.vm_batch_list_for_user(user=self.request.user)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        batch = services.vm_batch_create(
            user=request.user,
            project=data["project"],
            plan=data["plan"],
            image=data["image"],
            hypervisor=data["hypervisor"],
            name_pattern=data["name_pattern"],
            count=data["count"],
            first_number=data["first_number"],
            ssh_public_key=data["ssh_public_key"],
            ssh_key_id=data.get("ssh_key"),
            user_data=data["user_data"],
            request=request,
        )
        body = self.get_serializer(self.get_queryset().get(pk=batch.pk)).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["url"]})

    @extend_schema(request=None, responses={200: VMBatchSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """An operator approves every pending request of the batch."""
        batch = self.get_object()
        services.vm_batch_approve(batch=batch, actor=request.user, request=request)
        return Response(self.get_serializer(self.get_queryset().get(pk=batch.pk)).data)

    @extend_schema(request=RejectSerializer, responses={200: VMBatchSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """An operator rejects every pending request of the batch (quota given back)."""
        body = RejectSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        batch = self.get_object()
        services.vm_batch_reject(batch=batch, actor=request.user, reason=body.validated_data["reason"], request=request)
        return Response(self.get_serializer(self.get_queryset().get(pk=batch.pk)).data)
