"""Operators' admin for backups: every backup with its state and last operation; retry (its
failed operation) and cancel (its pending one) in bulk, through the audited operator services
(compute/services/operator.py). Schedules are listed with their last run and skip."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from compute import services
from compute.admin import _each
from compute.models import Backup, BackupSchedule
from controlplane.errors import Conflict


def _operation_call(call):
    def run(backup):
        if backup.operation is None:
            raise Conflict("This backup has no operation.")
        return call(backup.operation)

    return run


@admin.register(Backup)
class BackupAdmin(admin.ModelAdmin):
    list_display = ["id", "vm", "kind", "state", "size_bytes", "created_at", "completed_at", "last_operation"]
    list_filter = ["state", "kind", "vm__hypervisor"]
    search_fields = ["vm__name", "backend_ref", "vm__project__name"]
    readonly_fields = [f.name for f in Backup._meta.fields]
    list_select_related = ["vm", "operation"]
    date_hierarchy = "created_at"
    actions = ["retry", "cancel"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="last operation")
    def last_operation(self, obj):
        op = obj.operation
        if op is None:
            return "—"
        url = reverse("admin:compute_operation_change", args=[op.pk])
        return format_html('<a href="{}">{} #{} ({})</a>', url, op.get_action_display(), op.pk, op.state)

    @admin.action(description="Retry the failed operation of selected backups")
    def retry(self, request, queryset):
        call = _operation_call(lambda op: services.operation_retry(operation=op, actor=request.user))
        _each(self, request, queryset.select_related("operation"), "Retried", call)

    @admin.action(description="Cancel the pending operation of selected backups")
    def cancel(self, request, queryset):
        call = _operation_call(lambda op: services.operation_cancel(operation=op, actor=request.user))
        _each(self, request, queryset.select_related("operation"), "Cancelled", call)


@admin.register(BackupSchedule)
class BackupScheduleAdmin(admin.ModelAdmin):
    list_display = ["vm", "enabled", "frequency", "weekday", "window_start", "timezone", "retention", "last_run_at"]
    list_filter = ["enabled", "frequency"]
    search_fields = ["vm__name"]
    readonly_fields = ["last_run_at", "last_skipped_at", "last_skip_reason"]
    list_select_related = ["vm"]
