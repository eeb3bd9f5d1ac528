"""/api/v1/virtual-machines/{id}/metrics/, …/transfer/ and …/alert-rules/: a VM's charts, its
month's transfer, and its alert rules.

The VM is looked up among the caller's VMs (operators: all), so another
project's VM is a 404. Bad query parameters answer 400 with the reason.
"""

from datetime import timedelta

from django.core.validators import RegexValidator
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.choices import Role
from accounts.selectors import project_require_role
from compute import selectors
from compute.choices import AlertKind
from compute.models import VirtualMachine, VMAlertRule
from compute.selectors_metrics import MAX_POINTS, METRICS, metric_series, vm_transfer_month
from compute.services import alerts
from controlplane.api import DateTimeParameter, JSONTypesMixin
from controlplane.errors import InvalidInput, NotFound

MAX_RANGE = timedelta(days=366)


# ?metric=: one or more names, comma-separated, no spaces (the schema's pattern is the rule).
METRIC_NAMES = "|".join(METRICS)
METRIC_PATTERN = f"^({METRIC_NAMES})(,({METRIC_NAMES}))*$"


class MetricsQuerySerializer(serializers.Serializer):
    """``from`` / ``to`` are Python keywords: read into ``start`` / ``end``. An empty
    value is refused like a malformed one (leave the parameter out for the default)."""

    metric = serializers.CharField(
        required=False,
        default=",".join(METRICS),
        trim_whitespace=False,
        validators=[RegexValidator(METRIC_PATTERN, f"Comma-separated, from: {', '.join(METRICS)}.")],
    )
    start = DateTimeParameter(required=False)
    end = DateTimeParameter(required=False)
    step = serializers.IntegerField(required=False, min_value=60, max_value=86400)

    def to_internal_value(self, data):
        renamed = {"from": "start", "to": "end"}
        data = {renamed.get(key, key): data[key] for key in data if key in ("metric", "step", "from", "to")}
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            back = {value: key for key, value in renamed.items()}
            raise serializers.ValidationError({back.get(k, k): v for k, v in exc.detail.items()}) from None

    def validate_metric(self, value):
        return list(dict.fromkeys(value.split(",")))

    def validate(self, attrs):
        end = attrs.get("end") or timezone.now()
        try:
            start = attrs.get("start") or end - timedelta(hours=1)
        except OverflowError:  # to=0001-01-01T00:30:00Z
            raise serializers.ValidationError({"to": ["Too early for the default `from`: give `from` too."]}) from None
        if start >= end:
            raise serializers.ValidationError({"from": ["Must be before `to`."]})
        if end - start > MAX_RANGE:
            raise serializers.ValidationError({"from": ["At most 366 days per query."]})
        step = attrs.get("step")
        if step and (end - start).total_seconds() / step > MAX_POINTS:
            raise serializers.ValidationError(
                {"step": [f"Too many points (more than {MAX_POINTS}); use a larger step."]}
            )
        return {**attrs, "start": start, "end": end}


def vm_for(request, pk) -> VirtualMachine:
    vm = selectors.vm_get_for_user(user=request.user, pk=int(pk)) if str(pk).isdigit() else None
    if vm is None:
        raise NotFound("No such virtual machine.")
    return vm


class VMMetricsApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "metric",
                {"type": "string", "pattern": METRIC_PATTERN},
                description=f"Comma-separated: {', '.join(METRICS)} (default all).",
            ),
            OpenApiParameter(
                "from",
                OpenApiTypes.DATETIME,
                description="RFC 3339 start; default an hour before `to`. Before `to`, at most 366 days before it.",
            ),
            OpenApiParameter("to", OpenApiTypes.DATETIME, description="RFC 3339 end; default now."),
            OpenApiParameter(
                "step",
                {"type": "integer", "minimum": 60, "maximum": 86400},
                description=f"Seconds per point; default about 720 points, at most {MAX_POINTS} points.",
            ),
        ],
        responses={200: dict},
        description="Column-wise series: `t` (unix seconds) and one list per column in `values`; "
        "`null` is a gap (the hypervisor did not answer, or the VM was off).",
    )
    def get(self, request, pk):
        vm = vm_for(request, pk)
        query = MetricsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        return Response(
            metric_series(vm=vm, metrics=data["metric"], start=data["start"], end=data["end"], step=data.get("step"))
        )


class VMTransferApi(APIView):
    @extend_schema(responses={200: dict}, description="This month's transfer against the plan, and a projection.")
    def get(self, request, pk):
        summary = vm_transfer_month(vm=vm_for(request, pk))
        return Response(
            {
                "month": summary.month.isoformat(),
                "rx_bytes": summary.rx_bytes,
                "tx_bytes": summary.tx_bytes,
                "total_bytes": summary.total_bytes,
                "included_bytes": summary.included_bytes,
                "used_percent": summary.used_percent,
                "projected_bytes": summary.projected_bytes,
                "projected_over_bytes": summary.projected_over_bytes,
            }
        )


class AlertRuleSerializer(serializers.ModelSerializer):
    events = serializers.SerializerMethodField()

    class Meta:
        model = VMAlertRule
        fields = ["id", "kind", "threshold", "duration_minutes", "state", "changed_at", "created_at", "events"]
        read_only_fields = ["id", "state", "changed_at", "created_at", "events"]

    def get_events(self, rule) -> list[dict]:
        return [{"state": e.state, "value": e.value, "at": e.at} for e in rule.events.all()[:20]]


class _AlertRuleInput(JSONTypesMixin, serializers.Serializer):
    duration_minutes = serializers.IntegerField(
        required=False, default=10, min_value=0, max_value=1440, help_text="CPU only: minutes above the threshold."
    )


@extend_schema_field({"type": "string", "enum": [AlertKind.CPU.value]})
class _CPUKindField(serializers.ChoiceField):
    pass


@extend_schema_field({"type": "string", "enum": [AlertKind.TRANSFER.value]})
class _TransferKindField(serializers.ChoiceField):
    pass


class CPUAlertRuleSerializer(_AlertRuleInput):
    kind = _CPUKindField(choices=[AlertKind.CPU.value])
    threshold = serializers.IntegerField(min_value=1, max_value=100, help_text="Percent CPU.")


class TransferAlertRuleSerializer(_AlertRuleInput):
    kind = _TransferKindField(choices=[AlertKind.TRANSFER.value])
    threshold = serializers.IntegerField(
        min_value=1, max_value=1000, help_text="Percent of the plan's included transfer this month."
    )


# The threshold's range hangs on the kind: the schema says so with one body per kind.
ALERT_RULE_INPUTS = {AlertKind.CPU.value: CPUAlertRuleSerializer, AlertKind.TRANSFER.value: TransferAlertRuleSerializer}
AlertRuleRequest = PolymorphicProxySerializer(
    component_name="AlertRuleRequest", serializers=ALERT_RULE_INPUTS, resource_type_field_name="kind"
)


def _writable_vm(request, pk) -> VirtualMachine:
    vm = vm_for(request, pk)
    if not request.user.is_staff:
        project_require_role(user=request.user, project=vm.project, role=Role.MEMBER)
    return vm


class VMAlertRulesApi(APIView):
    """A VM's alert rules with their recent history; members and above add and remove them."""

    @extend_schema(responses={200: AlertRuleSerializer(many=True)})
    def get(self, request, pk):
        rules = VMAlertRule.objects.filter(vm=vm_for(request, pk)).prefetch_related("events")
        return Response(AlertRuleSerializer(rules, many=True).data)

    @extend_schema(
        request=AlertRuleRequest,
        responses={201: AlertRuleSerializer},
        description="Add a rule: CPU above `threshold` % (1-100) for `duration_minutes`, or this month's "
        "transfer above `threshold` % (1-1000) of the plan's (409 when the plan includes none, or at the "
        "per-VM limit).",
    )
    def post(self, request, pk):
        vm = _writable_vm(request, pk)
        kind = request.data.get("kind") if isinstance(request.data, dict) else None
        if not isinstance(kind, str) or kind not in ALERT_RULE_INPUTS:
            choices = " or ".join(ALERT_RULE_INPUTS)
            raise InvalidInput(f"Give the rule's kind: {choices}.", fields={"kind": [f"Choose {choices}."]})
        body = ALERT_RULE_INPUTS[kind](data=request.data)
        body.is_valid(raise_exception=True)
        rule = alerts.alert_rule_create(vm=vm, user=request.user, **body.validated_data)
        return Response(AlertRuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class VMAlertRuleApi(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, pk, rule_pk):
        vm = _writable_vm(request, pk)
        rule = VMAlertRule.objects.filter(vm=vm, pk=rule_pk).select_related("vm").first()
        if rule is None:
            raise NotFound("No such alert rule.")
        alerts.alert_rule_delete(rule=rule, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
