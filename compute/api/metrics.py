"""/api/v1/virtual-machines/{id}/metrics/, …/transfer/ and …/alert-rules/: a VM's charts, its
month's transfer, and its alert rules.

The VM is looked up among the caller's VMs (operators: all), so another
project's VM is a 404. Bad query parameters answer 400 with the reason.
"""

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.choices import Role
from accounts.selectors import project_require_role
from compute import selectors
from compute.models import VirtualMachine, VMAlertRule
from compute.selectors_metrics import MAX_POINTS, METRICS, metric_series, vm_transfer_month
from compute.services import alerts
from controlplane.errors import NotFound

MAX_RANGE = timedelta(days=366)


class MetricsQuerySerializer(serializers.Serializer):
    metric = serializers.CharField(
        required=False, default=",".join(METRICS), help_text=f"Comma-separated: {', '.join(METRICS)}."
    )
    start = serializers.DateTimeField(required=False, help_text="ISO 8601; default: an hour before `to`.")
    end = serializers.DateTimeField(required=False, help_text="ISO 8601; default: now.")
    step = serializers.IntegerField(required=False, min_value=60, max_value=86400, help_text="Seconds per point.")

    def to_internal_value(self, data):
        data = {k: v for k, v in data.items() if k not in ("from", "to")} | {
            "start": data.get("from") or None,
            "end": data.get("to") or None,
        }
        return super().to_internal_value({k: v for k, v in data.items() if v is not None})

    def validate_metric(self, value):
        names = [name.strip() for name in value.split(",") if name.strip()]
        unknown = [name for name in names if name not in METRICS]
        if unknown or not names:
            raise serializers.ValidationError(
                f"Unknown metric {', '.join(unknown) or '(none)'}; use {', '.join(METRICS)}."
            )
        return list(dict.fromkeys(names))

    def validate(self, attrs):
        end = attrs.get("end") or timezone.now()
        start = attrs.get("start") or end - timedelta(hours=1)
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
            OpenApiParameter("metric", str, description=f"Comma-separated: {', '.join(METRICS)} (default all)."),
            OpenApiParameter("from", str, description="ISO 8601 start; default an hour before `to`."),
            OpenApiParameter("to", str, description="ISO 8601 end; default now."),
            OpenApiParameter("step", int, description="Seconds per point, 60..86400; default about 720 points."),
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

    @extend_schema(request=AlertRuleSerializer, responses={201: AlertRuleSerializer})
    def post(self, request, pk):
        vm = _writable_vm(request, pk)
        body = AlertRuleSerializer(data=request.data)
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
