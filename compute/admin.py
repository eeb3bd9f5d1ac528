"""Operators' admin for compute: approvals, operations, VMs, hypervisors.

Every action goes through services (audited); nothing here writes rows directly.
"""

from django import forms
from django.contrib import admin, messages
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import format_html

from audit.admin_mixins import AuditedAdminMixin
from audit.choices import Action as AuditAction
from compute import admin_ipam, console_admin, dispatch, selectors, services  # noqa: F401  (admin_ipam, console_admin register their models)
from compute.choices import VMStatus
from compute.models import (
    Hypervisor,
    Image,
    ImageReference,
    Operation,
    Plan,
    ProjectQuota,
    Snapshot,
    TenantBinding,
    VirtualMachine,
    VMBatch,
    VMRequest,
    VMStatusEvent,
)
from controlplane import crypto
from controlplane.errors import ServiceError


def _each(modeladmin, request, queryset, label, call):
    done = failed = 0
    for obj in queryset:
        try:
            call(obj)
            done += 1
        except ServiceError as exc:
            failed += 1
            modeladmin.message_user(request, f"{obj}: {exc.message}", messages.WARNING)
    if done:
        modeladmin.message_user(request, f"{label}: {done} done.", messages.SUCCESS)
    return done, failed


class HypervisorForm(forms.ModelForm):
    new_credentials = forms.JSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text='Secrets as JSON, e.g. {"token_id": "cp@pve!cp", "token_secret": "..."}. Stored encrypted; '
        "never shown again. Leave empty to keep the current ones.",
    )

    class Meta:
        model = Hypervisor
        fields = [
            "name",
            "kind",
            "region",
            "queue",
            "connection",
            "enabled",
            "max_concurrent_operations",
            "build_timeout_seconds",
        ]

    def save(self, commit=True):
        if self.cleaned_data.get("new_credentials"):
            self.instance.credentials = self.cleaned_data["new_credentials"]
        return super().save(commit)


class ImageReferenceInline(admin.TabularInline):
    model = ImageReference
    extra = 1


@admin.register(Hypervisor)
class HypervisorAdmin(AuditedAdminMixin, admin.ModelAdmin):
    form = HypervisorForm
    audit_action = AuditAction.HYPERVISOR_CHANGED  # new_credentials recorded as changed, masked
    list_display = [
        "name",
        "kind",
        "region",
        "queue",
        "enabled",
        "maintenance",
        "max_concurrent_operations",
        "last_checked_at",
        "unknown_guests",
    ]
    list_filter = ["kind", "enabled", "maintenance"]
    search_fields = ["name", "region", "queue"]
    # Maintenance changes only through the audited actions below (compute/services/hypervisors.py).
    readonly_fields = ["maintenance", "last_checked_at", "last_check", "drift", "has_credentials"]
    actions = ["test_connection", "enter_maintenance", "leave_maintenance"]

    @admin.display(description="credentials set", boolean=True)
    def has_credentials(self, obj):
        return crypto.is_set(obj, "credentials")  # without decrypting

    @admin.display(description="unknown guests")
    def unknown_guests(self, obj):
        return len(obj.drift.get("unknown", []))

    @admin.action(description="Test connection (a worker asks the hypervisor; see 'last check')")
    def test_connection(self, request, queryset):
        for hypervisor in queryset:
            dispatch.publish_check(hypervisor_id=hypervisor.pk, queue=hypervisor.queue)
        self.message_user(request, "Connection test sent to the workers; reload in a few seconds.")

    @admin.action(description="Enter maintenance (operations wait)")
    def enter_maintenance(self, request, queryset):
        self._set_maintenance(request, queryset, on=True)

    @admin.action(description="Leave maintenance")
    def leave_maintenance(self, request, queryset):
        self._set_maintenance(request, queryset, on=False)

    def _set_maintenance(self, request, queryset, *, on: bool) -> None:
        _each(
            self,
            request,
            queryset,
            "Maintenance on" if on else "Maintenance off",
            lambda hv: services.hypervisor_set_maintenance(hypervisor=hv, on=on, actor=request.user, request=request),
        )


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "guest_type",
        "vcpus",
        "memory_mib",
        "disk_gib",
        "price_hourly_running",
        "price_hourly_stopped",
        "gst_rate",
        "requires_approval",
        "max_snapshots",
        "max_extra_ips",
        "price_hourly_extra_ip",
        "active",
    ]
    list_filter = ["guest_type", "requires_approval", "active"]
    search_fields = ["name"]


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["name", "os_name", "guest_type", "cloud_init", "active"]
    list_filter = ["guest_type", "active"]
    search_fields = ["name", "os_name"]
    inlines = [ImageReferenceInline]


@admin.register(ProjectQuota)
class ProjectQuotaAdmin(admin.ModelAdmin):
    list_display = [
        "project",
        "used_vms",
        "max_vms",
        "used_vcpus",
        "max_vcpus",
        "used_memory_mib",
        "max_memory_mib",
        "used_disk_gib",
        "max_disk_gib",
    ]
    search_fields = ["project__name", "project__slug"]
    readonly_fields = ["used_vms", "used_vcpus", "used_memory_mib", "used_disk_gib"]


class RejectForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=500)


@admin.register(VMRequest)
class VMRequestAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "requester", "plan", "hypervisor", "status", "created_at", "decided_by"]
    list_filter = ["status", "plan", "hypervisor"]
    search_fields = ["name", "project__name", "requester__email"]
    readonly_fields = [f.name for f in VMRequest._meta.fields]
    actions = ["approve", "reject"]
    list_select_related = ["project", "requester", "plan", "hypervisor", "decided_by"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Approve selected requests")
    def approve(self, request, queryset):
        _each(
            self,
            request,
            queryset,
            "Approved",
            lambda r: services.vm_request_approve_as_staff(vm_request=r, actor=request.user, request=request),
        )

    @admin.action(description="Reject selected requests (asks for a reason)")
    def reject(self, request, queryset):
        return _reject_with_reason(
            self,
            request,
            queryset,
            "Reject requests",
            lambda r, reason: services.vm_request_reject(
                vm_request=r, actor=request.user, reason=reason, request=request
            ),
        )


def _reject_with_reason(modeladmin, request, queryset, title, call):
    """An admin action ``reject``: ask for a reason, then ``call(obj, reason)`` for each."""
    if "apply" in request.POST:
        form = RejectForm(request.POST)
        if form.is_valid():
            reason = form.cleaned_data["reason"]
            _each(modeladmin, request, queryset, "Rejected", lambda obj: call(obj, reason))
            return None
    else:
        form = RejectForm()
    return render(
        request,
        "admin/compute/reject_requests.html",
        {
            "form": form,
            "requests": queryset,
            "opts": modeladmin.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "title": title,
        },
    )


class VMBatchAddForm(forms.ModelForm):
    """Operators create a batch for a project; ``clean`` asks the service (all or nothing),
    so a refusal (quota, pool, wallet, billing profile, names) shows as a form error."""

    class Meta:
        model = VMBatch
        fields = ["project", "plan", "image", "hypervisor", "name_pattern", "first_number", "count"]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            self.batch = services.vm_batch_create(user=self.user, request=self.http_request, **data)
        except ServiceError as exc:
            for field, errors in (exc.fields or {}).items():
                self.add_error(field if field in self.fields else None, errors)
            if not exc.fields:
                self.add_error(None, exc.message)
        return data


@admin.register(VMBatch)
class VMBatchAdmin(admin.ModelAdmin):
    list_display = ["__str__", "project", "plan", "hypervisor", "requester", "created_at", "progress"]
    list_filter = ["plan", "hypervisor"]
    search_fields = ["name_pattern", "project__name", "requester__email"]
    actions = ["approve", "reject"]

    def get_queryset(self, request):
        return selectors.vm_batch_with_progress(super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in VMBatch._meta.fields] + ["progress"] if obj is not None else []

    def get_form(self, request, obj=None, **kwargs):
        if obj is not None:
            return super().get_form(request, obj, **kwargs)
        form = super().get_form(request, obj, form=VMBatchAddForm, **kwargs)
        form.user, form.http_request = request.user, request
        return form

    def save_model(self, request, obj, form, change):
        """The service already wrote the batch (in the form's clean): show that one."""
        if change:
            return
        request._audit_changes = {}
        obj.pk, obj.requester_id, obj.created_at = form.batch.pk, form.batch.requester_id, form.batch.created_at

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="progress")
    def progress(self, batch):
        counts = selectors.vm_batch_progress(batch)
        return ", ".join(f"{n} {name}" for name, n in counts.items() if n and name != "requested") or "—"

    @admin.action(description="Approve every pending request of the selected batches")
    def approve(self, request, queryset):
        _each(
            self,
            request,
            queryset,
            "Approved",
            lambda b: services.vm_batch_approve(batch=b, actor=request.user, request=request),
        )

    @admin.action(description="Reject every pending request of the selected batches (asks for a reason)")
    def reject(self, request, queryset):
        return _reject_with_reason(
            self,
            request,
            queryset,
            "Reject batches",
            lambda b, reason: services.vm_batch_reject(batch=b, actor=request.user, reason=reason, request=request),
        )


class OperationInline(admin.TabularInline):
    model = Operation
    fields = ["action", "state", "attempts", "task_ref", "error_message", "created_at", "finished_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ["-created_at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(VirtualMachine)
class VirtualMachineAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "project",
        "hypervisor",
        "plan",
        "status",
        "task_state",
        "power_state",
        "backend_id",
        "drift",
        "console",
    ]
    list_filter = [
        "status",
        "power_state",
        "hypervisor",
        "plan",
        ("lost_at", admin.EmptyFieldListFilter),
        ("missing_since", admin.EmptyFieldListFilter),
    ]
    search_fields = ["name", "backend_id", "project__name", "owner__email", "ip_addresses"]
    readonly_fields = [f.name for f in VirtualMachine._meta.fields] + ["console"]
    list_select_related = ["project", "hypervisor", "plan"]
    inlines = [OperationInline]
    actions = ["force_resync"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="drift")
    def drift(self, obj):
        if obj.lost_at:
            return format_html('<strong class="lost">{}</strong>', "lost")
        if obj.missing_since:
            return "missing"
        return ""

    @admin.display(description="console")
    def console(self, obj):
        if obj.status != VMStatus.ACTIVE:
            return ""
        url = reverse("compute:operator_console", args=[obj.pk])
        return format_html('<a href="{}" target="_blank" rel="noopener">Open console</a>', url)

    @admin.action(description="Force resync from the hypervisor (also resets a VM stuck in error)")
    def force_resync(self, request, queryset):
        _each(
            self,
            request,
            queryset,
            "Resync requested",
            lambda vm: services.vm_resync_request(vm=vm, actor=request.user, request=request),
        )


@admin.register(Operation)
class OperationAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "action",
        "vm",
        "project",
        "hypervisor",
        "state",
        "attempts",
        "progress",
        "task_ref",
        "created_at",
        "short_error",
    ]
    list_filter = ["state", "action", "hypervisor"]
    search_fields = ["vm__name", "task_ref", "idempotency_key", "project__name", "error_message"]
    readonly_fields = [f.name for f in Operation._meta.fields]
    list_select_related = ["vm", "project", "hypervisor"]
    date_hierarchy = "created_at"
    actions = ["retry", "cancel"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="error")
    def short_error(self, obj):
        return (obj.error_message[:80] + "…") if len(obj.error_message) > 80 else obj.error_message

    @admin.action(description="Retry selected failed operations")
    def retry(self, request, queryset):
        _each(self, request, queryset, "Retried", lambda op: services.operation_retry(operation=op, actor=request.user))

    @admin.action(description="Cancel selected pending operations")
    def cancel(self, request, queryset):
        _each(
            self, request, queryset, "Cancelled", lambda op: services.operation_cancel(operation=op, actor=request.user)
        )


@admin.register(VMStatusEvent)
class VMStatusEventAdmin(admin.ModelAdmin):
    list_display = ["vm", "status", "power_state", "plan", "at", "source"]
    list_filter = ["status", "source"]
    search_fields = ["vm__name"]
    readonly_fields = [f.name for f in VMStatusEvent._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Snapshot)
class SnapshotAdmin(admin.ModelAdmin):
    """Read-only: snapshots change only through operations (retry / cancel them in Operations)."""

    list_display = ["name", "vm", "state", "backend_ref", "size_bytes", "created_at", "missing_since"]
    list_filter = ["state", "vm__hypervisor"]
    search_fields = ["name", "vm__name", "backend_ref"]
    list_select_related = ["vm"]
    readonly_fields = [f.name for f in Snapshot._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(TenantBinding)
class TenantBindingAdmin(admin.ModelAdmin):
    list_display = ["project", "hypervisor", "ready", "updated_at"]
    list_filter = ["ready", "hypervisor"]


from compute import backup_admin  # noqa: E402, F401  (registers Backup and BackupSchedule; uses _each above)
