"""Operators' admin: global webhook endpoints (created through the service, the secret
shown once), every endpoint's delivery log with redelivery, notifications, the relay cursor."""

from django import forms
from django.contrib import admin, messages

from audit.admin import ReadOnlyAdmin
from controlplane.errors import InvalidInput, ServiceError

from . import services
from .choices import EventType
from .models import Notification, RelayCursor, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from .services.webhooks import endpoint_fields_clean


class WebhookEndpointAdminForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https")
    event_types = forms.MultipleChoiceField(choices=EventType.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookEndpoint
        fields = ["project", "url", "description", "event_types", "enabled"]

    def clean(self):
        data = super().clean()
        project = data.get("project", getattr(self.instance, "project", None))
        try:
            endpoint_fields_clean(
                url=data.get("url", ""),
                event_types=data.get("event_types", []),
                description=data.get("description", ""),
                project=project,
            )
        except InvalidInput as exc:
            raise forms.ValidationError({k: v for k, v in exc.fields.items() if k in self.fields} or exc.message)
        return data


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointAdminForm
    list_display = ["url", "project", "enabled", "consecutive_failures", "created_by", "created_at"]
    list_filter = ["enabled", ("project", admin.EmptyFieldListFilter)]
    search_fields = ["url", "description", "project__slug"]
    list_select_related = ["project", "created_by"]
    readonly_fields = ["consecutive_failures", "disabled_at", "disabled_reason", "created_by", "created_at"]
    autocomplete_fields = ["project"]
    actions = ["rotate_secret"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "project"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        """Writes go through the services (validation, audit); the new secret is shown once."""
        data = form.cleaned_data
        fields = {k: data[k] for k in ("url", "event_types", "description")}
        if change:
            services.webhook_endpoint_update(
                endpoint=obj, actor=request.user, enabled=data["enabled"], request=request, **fields
            )
            return
        endpoint, secret = services.webhook_endpoint_create(
            actor=request.user, project=data.get("project"), request=request, **fields
        )
        obj.pk = endpoint.pk
        messages.warning(request, f"Signing secret (shown only now): {secret}")

    def delete_model(self, request, obj):
        services.webhook_endpoint_delete(endpoint=obj, actor=request.user, request=request)

    def delete_queryset(self, request, queryset):
        for endpoint in queryset:
            services.webhook_endpoint_delete(endpoint=endpoint, actor=request.user, request=request)

    @admin.action(description="Rotate the signing secret (shows the new one)")
    def rotate_secret(self, request, queryset):
        for endpoint in queryset:
            secret = services.webhook_secret_rotate(endpoint=endpoint, actor=request.user, request=request)
            messages.warning(request, f"New secret of {endpoint.url} (shown only now): {secret}")


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ["number", "at", "status_code", "error", "duration_ms", "response_body"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["message_id", "event_type", "endpoint", "state", "attempts", "last_status_code", "created_at"]
    list_filter = ["state", "event_type"]
    search_fields = ["message_id", "endpoint__url"]
    list_select_related = ["endpoint"]
    inlines = [WebhookAttemptInline]
    actions = ["redeliver"]

    @admin.action(description="Redeliver now (same webhook-id)")
    def redeliver(self, request, queryset):
        sent = 0
        for delivery in queryset.select_related("endpoint"):
            try:
                services.webhook_delivery_redeliver(delivery=delivery, actor=request.user)
                sent += 1
            except ServiceError as exc:
                messages.error(request, f"{delivery.message_id}: {exc.message}")
        messages.success(request, f"{sent} deliveries queued again.")


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["title", "user", "event_type", "project", "created_at", "read_at", "email_state"]
    list_filter = ["event_type", "email_state"]
    search_fields = ["title", "user__email"]
    list_select_related = ["user", "project"]


@admin.register(RelayCursor)
class RelayCursorAdmin(ReadOnlyAdmin):
    list_display = ["name", "last_event_id", "updated_at"]
