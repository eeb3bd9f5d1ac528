from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Project

from ..choices import EventType
from ..models import Notification, WebhookAttempt, WebhookDelivery, WebhookEndpoint


class NotificationSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Notification
        fields = ["id", "event_type", "title", "body", "url", "project", "created_at", "read_at", "email_state"]
        read_only_fields = fields


class MarkReadSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(), required=False, help_text="Notifications to mark read; omit for all."
    )


class MarkedSerializer(serializers.Serializer):
    marked = serializers.IntegerField()


class PreferenceSerializer(serializers.Serializer):
    event_type = serializers.ChoiceField(choices=EventType.choices)
    label = serializers.CharField(read_only=True)
    email = serializers.BooleanField()


@extend_schema_field(
    {
        "type": "object",
        "properties": {event_type: {"type": "boolean"} for event_type in EventType.values},
        "additionalProperties": False,
    }
)
class EventTypeFlagsField(serializers.DictField):
    """``{event type: bool}``; the schema names every event type, so others are rejected up front."""

    child = serializers.BooleanField()

    def to_internal_value(self, data):
        if isinstance(data, dict) and not all(isinstance(on, bool) for on in data.values()):
            raise serializers.ValidationError("Each event type takes true or false.")
        return super().to_internal_value(data)


class PreferencesUpdateSerializer(serializers.Serializer):
    email = EventTypeFlagsField(
        required=False, default=dict, help_text='Event type → email on/off, e.g. {"vm.ready": false}; others unchanged.'
    )


class WebhookEndpointSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Project.objects.all(),
        required=False,
        allow_null=True,
        help_text="The project's slug; empty for a global endpoint (operators only).",
    )
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=EventType.choices), min_length=1)
    created_by = serializers.EmailField(source="created_by.email", read_only=True, default=None)

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "project",
            "url",
            "description",
            "event_types",
            "enabled",
            "consecutive_failures",
            "disabled_at",
            "disabled_reason",
            "created_by",
            "created_at",
        ]
        read_only_fields = ["consecutive_failures", "disabled_at", "disabled_reason", "created_by", "created_at"]

    def validate_project(self, project):
        if project is not None and not project.memberships.filter(user=self.context["request"].user).exists():
            raise serializers.ValidationError("No such project.")
        return project


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text="The signing secret (whsec_…); shown only now.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class SecretSerializer(serializers.Serializer):
    secret = serializers.CharField(read_only=True)


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["number", "at", "status_code", "error", "duration_ms"]
        read_only_fields = fields


class WebhookDeliverySerializer(serializers.ModelSerializer):
    attempt_log = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint",
            "message_id",
            "event_type",
            "state",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "created_at",
            "finished_at",
            "payload",
            "attempt_log",
        ]
        read_only_fields = fields
