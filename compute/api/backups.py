"""/api/v1/virtual-machines/<id>/backups/ and /backup-schedule/: backup now, restore, delete
(each answered 202 with its operation) and the VM's backup schedule (compute/services/backups.py).
Mixed into VirtualMachineViewSet."""

import zoneinfo

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.security import check_recent_otp
from compute import selectors_backups, services
from compute.choices import BackupFrequency
from compute.models import Backup, BackupSchedule
from controlplane.api import JSONTypesMixin
from controlplane.errors import NotFound

from .serializers import ActionAcceptedSerializer

WINDOW_START_PATTERN = "^([01][0-9]|2[0-3]):[0-5][0-9]$"


class BackupSerializer(serializers.ModelSerializer):
    operation = serializers.IntegerField(source="operation_id", allow_null=True, read_only=True)

    class Meta:
        model = Backup
        fields = ["id", "kind", "state", "size_bytes", "created_at", "completed_at", "missing_since", "operation"]


@extend_schema_field({"type": "string", "pattern": WINDOW_START_PATTERN, "example": "02:30"})
class WindowStartField(serializers.TimeField):
    """A wall-clock time in the schedule's own zone, so no offset: ``HH:MM`` (the schema's
    ``format: time`` would demand one). Written back as ``HH:MM``."""

    def __init__(self, **kwargs):
        super().__init__(format="%H:%M", input_formats=["%H:%M"], **kwargs)


class BackupScheduleSerializer(JSONTypesMixin, serializers.ModelSerializer):
    frequency = serializers.ChoiceField(choices=BackupFrequency.choices)
    weekday = serializers.IntegerField(min_value=0, max_value=6, required=False, allow_null=True)
    window_start = WindowStartField(help_text="HH:MM in the schedule's time zone.")
    window_minutes = serializers.IntegerField(min_value=30, max_value=720, required=False, default=120)
    timezone = serializers.ChoiceField(
        choices=sorted(zoneinfo.available_timezones()), required=False, default="Asia/Kolkata", help_text="IANA zone."
    )
    retention = serializers.IntegerField(min_value=1, help_text="Scheduled backups kept (at most the plan's).")
    enabled = serializers.BooleanField(required=False, default=True)

    class Meta:
        model = BackupSchedule
        fields = [
            "enabled",
            "frequency",
            "weekday",
            "window_start",
            "window_minutes",
            "timezone",
            "retention",
            "last_run_at",
            "last_skipped_at",
            "last_skip_reason",
        ]
        read_only_fields = ["last_run_at", "last_skipped_at", "last_skip_reason"]


class VMBackupMixin:
    """Needs ``get_object`` (the caller's VM, 404 otherwise) and ``accepted`` from the view module."""

    def _backup(self, vm, backup_id) -> Backup:
        backup = selectors_backups.backup_get_for_vm(vm=vm, pk=backup_id)
        if backup is None:
            raise NotFound("No such backup.")
        return backup

    @extend_schema(
        methods=["GET"], request=None, responses={200: BackupSerializer(many=True)}, description="The VM's backups."
    )
    @extend_schema(
        methods=["POST"],
        request=None,
        responses={202: ActionAcceptedSerializer},
        description="Back up now (409 at the plan's limit of manual backups, while another action runs, or "
        "where the hypervisor has no backups).",
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None, filter_backends=[])
    def backups(self, request, pk=None):
        vm = self.get_object()
        if request.method == "GET":
            return Response(BackupSerializer(selectors_backups.backup_list_for_vm(vm=vm), many=True).data)
        return self.accepted(request, services.vm_backup_create(vm=vm, user=request.user, request=request))

    @extend_schema(
        request=None,
        responses={202: ActionAcceptedSerializer},
        description="Replace the VM's disk with this backup (changes since are lost): needs a current two-factor "
        "code in X-OTP-Token from a user with 2FA.",
    )
    @action(detail=True, methods=["post"], url_path=r"backups/(?P<backup_id>\d+)/restore")
    def backup_restore(self, request, pk=None, backup_id=None):
        backup = self._backup(self.get_object(), backup_id)
        check_recent_otp(request)
        operation = services.vm_backup_restore(backup=backup, user=request.user, request=request)
        return self.accepted(request, operation)

    @extend_schema(request=None, responses={202: ActionAcceptedSerializer})
    @action(detail=True, methods=["delete"], url_path=r"backups/(?P<backup_id>\d+)")
    def backup_delete(self, request, pk=None, backup_id=None):
        backup = self._backup(self.get_object(), backup_id)
        operation = services.vm_backup_delete(backup=backup, user=request.user, request=request)
        return self.accepted(request, operation)

    @extend_schema(methods=["GET"], request=None, responses={200: BackupScheduleSerializer, 404: None})
    @extend_schema(
        methods=["PUT"],
        request=BackupScheduleSerializer,
        responses={200: BackupScheduleSerializer},
        description="Set the schedule: daily or weekly (weekday 0 Monday … 6 Sunday), a window start and "
        "length in its time zone, and how many scheduled backups to keep (at most the plan's max_backups).",
    )
    @extend_schema(methods=["DELETE"], request=None, responses={204: None})
    @action(detail=True, methods=["get", "put", "delete"], url_path="backup-schedule")
    def backup_schedule(self, request, pk=None):
        vm = self.get_object()
        if request.method == "GET":
            schedule = selectors_backups.backup_schedule_for_vm(vm=vm)
            if schedule is None:
                raise NotFound(f"{vm.name} has no backup schedule.")
            return Response(BackupScheduleSerializer(schedule).data)
        if request.method == "DELETE":
            services.backup_schedule_delete(vm=vm, user=request.user, request=request)
            return Response(status=status.HTTP_204_NO_CONTENT)
        body = BackupScheduleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        schedule = services.backup_schedule_set(
            vm=vm,
            user=request.user,
            frequency=data["frequency"],
            weekday=data.get("weekday"),
            window_start=data["window_start"],
            window_minutes=data["window_minutes"],
            tz=data["timezone"],
            retention=data["retention"],
            enabled=data["enabled"],
            request=request,
        )
        return Response(BackupScheduleSerializer(schedule).data)
