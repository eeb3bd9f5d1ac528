import types

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Project
from accounts.selectors import project_list_for_user
from compute import selectors
from compute.models import Hypervisor, Image, Operation, Plan, VirtualMachine, VMRequest
from controlplane.api import IdField, JSONTypesMixin


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
            "max_extra_ips",
            "price_hourly_extra_ip",
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
    vm_name = serializers.CharField(source="vm.name", read_only=True, default=None, allow_null=True)
    requested_by = serializers.EmailField(source="requested_by.email", read_only=True, default=None, allow_null=True)
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


class AddressSerializer(serializers.Serializer):
    address = serializers.CharField()
    family = serializers.IntegerField(help_text="4 or 6.")
    ptr = serializers.CharField(help_text="Reverse DNS name (PTR), with the trailing dot; empty: none.")
    ptr_pending = serializers.BooleanField(help_text="The PTR change is not in the DNS server yet.")
    extra = serializers.BooleanField(help_text="An additional IP (the plan's priced add-on), billed by the hour held.")


class VirtualMachineSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="virtualmachine-detail")
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    plan = serializers.SlugRelatedField(slug_field="name", read_only=True)
    image = serializers.SlugRelatedField(slug_field="name", read_only=True)
    hypervisor = serializers.SlugRelatedField(slug_field="name", read_only=True)
    addresses = serializers.SerializerMethodField(
        help_text="Static addresses from the operator's IP pools, known from creation on "
        "(ip_addresses is what the hypervisor last reported)."
    )

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
            "addresses",
            "created_at",
            "updated_at",
            "status_changed_at",
            "power_state_at",
            "missing_since",
            "lost_at",
            "deleted_at",
        ]
        read_only_fields = fields

    # The related names each row shows (the SlugRelatedFields above), read straight off the joined rows.
    RELATED = {"project": "slug", "plan": "name", "image": "name", "hypervisor": "name"}
    # A pk no VM has, to cut the URL of one row into what comes before and after its id.
    _URL_PROBE = 987654321987

    @extend_schema_field(AddressSerializer(many=True))
    def get_addresses(self, vm) -> list[dict]:
        held = getattr(vm, "assigned_addresses", None)
        if held is None:  # a VM not loaded through the list/detail selectors
            held = selectors.ip_allocation_list_for_vm(vm=vm)
        return [
            {"address": a.address, "family": a.family, "ptr": a.ptr, "ptr_pending": a.ptr_pending, "extra": a.extra}
            for a in held
        ]

    def to_representation(self, vm) -> dict:
        """The fields above, without DRF's per-field, per-row machinery (issue 25: it was a
        quarter of a 50-VM list page): each model field through its own serializer field's
        ``to_representation`` (same values: datetimes in the display time zone), the related
        names off the joined rows, and the URL reversed once per list, not once per row."""
        plan = self.__dict__.get("_row_plan")
        if plan is None:
            plan = self._row_plan = self._build_row_plan()
        url_prefix, url_suffix = self._url_parts()
        row = {}
        for name, kind, convert in plan:
            if kind == "field":
                value = getattr(vm, name)
                row[name] = None if value is None else convert(value)
            elif kind == "related":
                related = getattr(vm, name)
                row[name] = None if related is None else getattr(related, convert)
            elif kind == "url":
                row[name] = f"{url_prefix}{vm.pk}{url_suffix}" if url_prefix is not None else convert(vm)
            else:
                row[name] = convert(vm)
        return row

    def _build_row_plan(self) -> list:
        plan = []
        for name, field in self.fields.items():
            if name == "url":
                plan.append((name, "url", field.to_representation))
            elif name in self.RELATED:
                plan.append((name, "related", self.RELATED[name]))
            elif name == "addresses":
                plan.append((name, "method", self.get_addresses))
            else:
                assert field.source == name, f"{name}: a plain model field is read by its own name"
                plan.append((name, "field", field.to_representation))
        return plan

    def _url_parts(self) -> tuple[str | None, str | None]:
        """The detail URL around the id, from one reverse() with a probe id (None, None: the
        probe did not come out once in the URL; each row then reverses its own)."""
        parts = self.__dict__.get("_url_cut")
        if parts is None:
            url = self.fields["url"].to_representation(types.SimpleNamespace(pk=self._URL_PROBE))
            probe = str(self._URL_PROBE)
            parts = tuple(url.split(probe)) if url and url.count(probe) == 1 else (None, None)
            self._url_cut = parts
        return parts


class NewVMFieldsMixin(JSONTypesMixin, serializers.Serializer):
    """What a request and a batch ask for: project, plan, image, hypervisor, a saved key."""

    project = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Project.objects.none(),  # the caller's projects: see get_fields
        error_messages={"does_not_exist": "No such project."},
        help_text="The project's slug.",
    )
    plan = IdField(queryset=Plan.objects.filter(active=True))
    image = IdField(queryset=Image.objects.filter(active=True))
    hypervisor = IdField(queryset=Hypervisor.objects.filter(enabled=True))
    requester = serializers.EmailField(source="requester.email", read_only=True)
    ssh_key = serializers.IntegerField(
        write_only=True,
        required=False,
        help_text=(
            "Id of a saved SSH key (yours or the project's, /api/v1/ssh-keys/) instead of "
            "ssh_public_key: one or the other, not both."
        ),
    )

    def get_fields(self):
        """Only the caller's projects can be named, so another tenant's slug and
        a slug that does not exist get the same answer."""
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None and request.user.is_authenticated:
            fields["project"].queryset = project_list_for_user(user=request.user)
        return fields


class VMRequestSerializer(NewVMFieldsMixin, serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="vmrequest-detail")
    decided_by = serializers.EmailField(source="decided_by.email", read_only=True, default=None, allow_null=True)
    vm = serializers.SerializerMethodField()

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
        validators = []  # a name taken is the service's 409, not the model constraint's 400

    def get_vm(self, obj) -> int | None:
        vm = getattr(obj, "vm", None)
        return vm.pk if vm else None


@extend_schema_field({"type": "string", "maxLength": 500, "pattern": "^[^\\u0000]*$"})
class ReasonField(serializers.CharField):
    """Free text without NUL characters (PostgreSQL text cannot hold them; the schema says so)."""


class RejectSerializer(JSONTypesMixin, serializers.Serializer):
    reason = ReasonField(max_length=500)


class ActionAcceptedSerializer(serializers.Serializer):
    operation = OperationSerializer()
