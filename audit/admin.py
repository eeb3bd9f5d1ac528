from django.contrib import admin
from django.db.models import Q
from django.http import StreamingHttpResponse
from django.utils import timezone

from . import export, services
from .admin_mixins import AuditedAdminMixin, form_changes

__all__ = ["AuditedAdminMixin", "ReadOnlyAdmin", "form_changes"]
from .choices import Action, SystemActor
from .models import AuditCheckpoint, AuditEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    """Operators can look, filter and export; nobody adds, edits or deletes here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ActorKindFilter(admin.SimpleListFilter):
    title = "actor"
    parameter_name = "actor_kind"

    def lookups(self, request, model_admin):
        return [("user", "People"), *SystemActor.choices]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "user":
            return queryset.filter(actor_user__isnull=False)
        if value in SystemActor.values:
            return queryset.filter(Q(actor=value) | Q(actor__startswith=f"{value}:"))
        return queryset


class ActionGroupFilter(admin.SimpleListFilter):
    title = "action group"
    parameter_name = "action_group"

    def lookups(self, request, model_admin):
        groups = dict.fromkeys(value.split(".")[0] for value in Action.values)
        return [(group, group) for group in groups]

    def queryset(self, request, queryset):
        return queryset.filter(action__startswith=f"{self.value()}.") if self.value() else queryset


class ActionFilter(admin.SimpleListFilter):
    title = "action"
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return Action.choices

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


class TargetTypeFilter(admin.SimpleListFilter):
    title = "target type"
    parameter_name = "target_type"

    def lookups(self, request, model_admin):
        types = (
            AuditEvent.objects.exclude(target_type="")
            .order_by("target_type")
            .values_list("target_type", flat=True)
            .distinct()
        )
        return [(value, value) for value in types]

    def queryset(self, request, queryset):
        return queryset.filter(target_type=self.value()) if self.value() else queryset


def _export_response(modeladmin, request, queryset, fmt: str):
    services.record(
        actor=request.user,
        action=Action.ADMIN_ACTION,
        details={"operation": "export", "model": "audit.auditevent", "format": fmt, "events": queryset.count()},
        request=request,
    )
    content_type = "text/csv" if fmt == "csv" else "application/x-ndjson"
    response = StreamingHttpResponse(export.FORMATS[fmt](export.event_rows(queryset)), content_type=content_type)
    filename = f"audit-{timezone.now():%Y%m%dT%H%M%SZ}.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@admin.action(description="Export selected events as CSV", permissions=["view"])
def export_csv(modeladmin, request, queryset):
    return _export_response(modeladmin, request, queryset, "csv")


@admin.action(description="Export selected events as JSON lines", permissions=["view"])
def export_jsonl(modeladmin, request, queryset):
    return _export_response(modeladmin, request, queryset, "jsonl")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "actor", "action", "target", "project", "ip_address", "request_id"]
    list_display_links = ["id", "created_at"]
    list_filter = [
        ActorKindFilter,
        ActionGroupFilter,
        ActionFilter,
        "project",
        ("created_at", admin.DateFieldListFilter),
        TargetTypeFilter,
    ]
    list_select_related = ["project"]
    search_fields = ["actor", "action", "target_repr", "target_id", "request_id", "ip_address", "details"]
    show_full_result_count = False
    actions = [export_csv, export_jsonl]
    fields = [
        "id",
        "created_at",
        "actor",
        "actor_user",
        "action",
        "target_type",
        "target_id",
        "target_repr",
        "project",
        "details",
        "ip_address",
        "user_agent",
        "request_id",
        "prev_hash",
        "hash",
    ]

    @admin.display(description="target")
    def target(self, event):
        return f"{event.target_type} {event.target_id}: {event.target_repr}" if event.target_type else ""


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "last_event_id", "events_removed", "cutoff", "archive_path"]
