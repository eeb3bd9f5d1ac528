from rest_framework import serializers

from audit.models import AuditEvent
from audit.severity import severity_of


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "actor",
            "action",
            "target_type",
            "target_id",
            "target_repr",
            "details",
            "ip_address",
            "user_agent",
            "request_id",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields


class SecurityEventSerializer(AuditEventSerializer):
    severity = serializers.SerializerMethodField()

    class Meta(AuditEventSerializer.Meta):
        fields = [*AuditEventSerializer.Meta.fields, "actor_user", "project", "severity"]
        read_only_fields = fields

    def get_severity(self, event) -> str:
        return str(severity_of(event.action))
