from rest_framework import serializers

from accounts.models import Project
from compute.models import Hypervisor, Image, Operation, Plan, VirtualMachine, VMRequest


class PlanSerializer(serializers.ModelSerializer):
    class Meta:
        model = Plan
        fields = [
            "id",
            "name",
            "vcpus",
            "memory_mib",
            "disk_gib",
            "guest_type",
            "price_hourly_running",
            "price_hourly_stopped",
            "sac_code",
            "gst_rate",
            "requires_approval",
        ]


class ImageSerializer(serializers.ModelSerializer):
    hypervisors = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = ["id", "name", "os_name", "guest_type", "cloud_init", "hypervisors"]

    def get_hypervisors(self, image) -> list[str]:
        return [ref.hypervisor.name for ref in image.references.all()]


class HypervisorSerializer(serializers.ModelSerializer):
    class Meta:
        model = Hypervisor
        fields = ["id", "name", "kind", "region", "maintenance"]


class OperationSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="operation-detail")
    vm = serializers.PrimaryKeyRelatedField(read_only=True)
    vm_name = serializers.CharField(source="vm.name", read_only=True, default=None)
    requested_by = serializers.EmailField(source="requested_by.email", read_only=True, default=None)
    hypervisor = serializers.CharField(source="hypervisor.name", read_only=True)

    class Meta:
        model = Operation
        fields = [
            "id",
            "url",
            "vm",
            "vm_name",
            "hypervisor",
            "action",
            "state",
            "attempts",
            "max_attempts",
            "next_attempt_at",
            "task_ref",
            "progress",
            "progress_message",
            "error_code",
            "error_message",
            "requested_by",
            "idempotency_key",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class VirtualMachineSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="virtualmachine-detail")
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    plan = serializers.SlugRelatedField(slug_field="name", read_only=True)
    image = serializers.SlugRelatedField(slug_field="name", read_only=True)
    hypervisor = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = VirtualMachine
        fields = [
            "id",
            "url",
            "name",
            "project",
            "plan",
            "image",
            "hypervisor",
            "backend_id",
            "status",
            "task_state",
            "power_state",
            "ip_addresses",
            "created_at",
            "updated_at",
            "status_changed_at",
            "power_state_at",
            "missing_since",
            "lost_at",
            "deleted_at",
        ]
        read_only_fields = fields


class VMRequestSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="vmrequest-detail")
    project = serializers.SlugRelatedField(slug_field="slug", queryset=Project.objects.all())
    plan = serializers.PrimaryKeyRelatedField(queryset=Plan.objects.filter(active=True))
    image = serializers.PrimaryKeyRelatedField(queryset=Image.objects.filter(active=True))
    hypervisor = serializers.PrimaryKeyRelatedField(queryset=Hypervisor.objects.filter(enabled=True))
    requester = serializers.EmailField(source="requester.email", read_only=True)
    decided_by = serializers.EmailField(source="decided_by.email", read_only=True, default=None)
    vm = serializers.SerializerMethodField()
    ssh_key = serializers.IntegerField(
        write_only=True,
        required=False,
        help_text="Id of a saved SSH key (yours or the project's, /api/v1/ssh-keys/) instead of ssh_public_key.",
    )

    class Meta:
        model = VMRequest
        fields = [
            "id",
            "url",
            "project",
            "plan",
            "image",
            "hypervisor",
            "name",
            "ssh_public_key",
            "ssh_key",
            "user_data",
            "status",
            "requester",
            "decided_by",
            "decided_at",
            "reason",
            "created_at",
            "vm",
        ]
        read_only_fields = ["status", "requester", "decided_by", "decided_at", "reason", "created_at"]
        extra_kwargs = {"user_data": {"write_only": True}}

    def get_vm(self, obj) -> int | None:
        vm = getattr(obj, "vm", None)
        return vm.pk if vm else None

    def validate_project(self, project):
        user = self.context["request"].user
        if not project.memberships.filter(user=user).exists():
            raise serializers.ValidationError("No such project.")
        return project


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class ActionAcceptedSerializer(serializers.Serializer):
    operation = OperationSerializer()
