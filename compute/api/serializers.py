import copy
import datetime
import types

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

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
        return [{name: getattr(a, name) for name in selectors.ADDRESS_FIELDS} for a in held]

    def to_representation(self, vm) -> dict:
        """The fields above, without DRF's per-field, per-row machinery (issue 25: it was a
        quarter of a 50-VM list page): the row ``rows`` writes, from the values read off the VM
        and its joined rows in ``columns(values=True)``'s order."""
        values = []
        for column in self.columns(values=True):
            name, _, attribute = column.partition("__")
            value = getattr(vm, name)
            values.append(getattr(value, attribute) if attribute and value is not None else value)
        return self.rows([tuple(values)], {vm.pk: self.get_addresses(vm)})[0]

    @classmethod
    def columns(cls, *, values: bool = False) -> list[str]:
        """What a row reads of a VM and of its joined rows (issue 25: not the plan's prices, the
        project's billing details, the VM's keys and user data): its own fields in the row's
        order, then the related names. For ``only()``; ``values=True``: for ``values_list()``,
        without the foreign keys that ``only()`` needs to follow them."""
        return [
            *(name for name in cls.Meta.fields if name not in ("url", "addresses", *(cls.RELATED if values else ()))),
            *(f"{name}__{field}" for name, field in cls.RELATED.items()),
        ]

    def rows(self, values: list[tuple], addresses: dict[int, list[dict]]) -> list[dict]:
        """``to_representation`` of a page of VMs read as ``values_list(*columns(values=True))``
        tuples, with their addresses by VM id (``selectors.assigned_addresses_by_vm``): the same
        rows without a model instance per VM and per joined row (issue 25)."""
        index = {column: n for n, column in enumerate(self.columns(values=True))}
        pk = index["id"]
        url_prefix, url_suffix = self._url_parts()
        tz = timezone.get_current_timezone()
        plan = []
        for name, kind, convert in self.row_plan():
            if kind == "related":
                plan.append((name, "field", index[f"{name}__{convert}"], None))
            elif kind in ("field", "datetime"):
                plan.append((name, kind, index[name], convert))
            else:
                plan.append((name, kind, pk, None))
        rows = []
        for value in values:
            row = {}
            for name, kind, at, convert in plan:
                field = value[at]
                if kind == "field":
                    row[name] = field if field is None or convert is None else convert(field)
                elif kind == "datetime":
                    row[name] = None if field is None else _iso(field, tz, convert)
                elif kind == "url":
                    row[name] = f"{url_prefix}{field}{url_suffix}" if url_prefix is not None else self._url(field)
                else:
                    row[name] = addresses.get(field) or []
            rows.append(row)
        return rows

    @classmethod
    def row_plan(cls) -> list[tuple]:
        """(name, kind, how) for each field, once per process: building a ModelSerializer's
        fields costs about a millisecond, every request. The conversions kept are those of
        fields that depend on no request (the URL's does: ``_url_parts``)."""
        plan = cls.__dict__.get("_row_plan")
        if plan is None:
            plan = []
            for name, field in cls().fields.items():
                if name == "url":
                    plan.append((name, "url", None))
                elif name in cls.RELATED:
                    plan.append((name, "related", cls.RELATED[name]))
                elif name == "addresses":
                    assert isinstance(field, serializers.SerializerMethodField)
                    plan.append((name, "method", None))
                else:
                    assert field.source == name, f"{name}: a plain model field is read by its own name"
                    kind = "datetime" if type(field) is serializers.DateTimeField and _plain_iso(field) else "field"
                    plan.append((name, kind, field.to_representation))
            cls._row_plan = plan
        return plan

    def _url(self, pk) -> str:
        return self.fields["url"].to_representation(types.SimpleNamespace(pk=pk))

    def _url_parts(self) -> tuple[str | None, str | None]:
        """The detail URL around the id, from one reverse() with a probe id (None, None: the
        probe did not come out once in the URL; each row then reverses its own). The URL field
        alone, bound to this serializer: not all the fields."""
        parts = self.__dict__.get("_url_cut")
        if parts is None:
            field = copy.deepcopy(self._declared_fields["url"])
            field.bind("url", self)
            url = field.to_representation(types.SimpleNamespace(pk=self._URL_PROBE))
            probe = str(self._URL_PROBE)
            parts = tuple(url.split(probe)) if url and url.count(probe) == 1 else (None, None)
            self._url_cut = parts
        return parts


def _plain_iso(field: serializers.DateTimeField) -> bool:
    """The field writes ISO 8601 in the current time zone (no format, no time zone of its own)."""
    output = getattr(field, "format", api_settings.DATETIME_FORMAT)
    return settings.USE_TZ and not hasattr(field, "timezone") and isinstance(output, str) and output.lower() == ISO_8601


def _iso(value, tz, convert) -> str:
    """DateTimeField.to_representation for an aware datetime (issue 25: a tenth of a list page),
    in the time zone ``tz`` the request runs in; anything else goes to the field."""
    if type(value) is not datetime.datetime or value.tzinfo is None:
        return convert(value)
    try:
        text = value.astimezone(tz).isoformat()
    except OverflowError:  # the field's own error
        return convert(value)
    return text[:-6] + "Z" if text.endswith("+00:00") else text


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
