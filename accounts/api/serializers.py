from rest_framework import serializers

from controlplane.api import JSONTypesMixin

from ..choices import Role
from ..models import AccessToken, Invitation, Membership, Project


class ProjectSerializer(JSONTypesMixin, serializers.ModelSerializer):
    role = serializers.CharField(read_only=True, help_text="Your role in the project.")
    member_count = serializers.IntegerField(read_only=True)
    suspended = serializers.BooleanField(source="is_suspended", read_only=True)

    class Meta:
        model = Project
        fields = ["id", "name", "slug", "kind", "require_2fa", "suspended", "role", "member_count", "created_at"]
        # require_2fa is changed with PATCH (owners), not set at creation
        read_only_fields = ["slug", "kind", "require_2fa", "created_at"]


class ProjectUpdateSerializer(JSONTypesMixin, serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    require_2fa = serializers.BooleanField(required=False, help_text="Owners only.")


class MemberSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    full_name = serializers.CharField(source="user.full_name", read_only=True)
    has_2fa = serializers.BooleanField(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "full_name", "role", "has_2fa", "created_at"]
        read_only_fields = ["created_at"]


class RoleSerializer(JSONTypesMixin, serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationSerializer(JSONTypesMixin, serializers.ModelSerializer):
    invited_by = serializers.EmailField(source="invited_by.email", read_only=True, default=None, allow_null=True)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "invited_by", "created_at", "expires_at"]
        read_only_fields = ["created_at", "expires_at"]


class AccessTokenSerializer(JSONTypesMixin, serializers.ModelSerializer):
    class Meta:
        model = AccessToken
        fields = [
            "id",
            "name",
            "prefix",
            "read_only",
            "staff",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]


class AccessTokenCreatedSerializer(AccessTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The token itself: shown this once, never again.")

    class Meta(AccessTokenSerializer.Meta):
        fields = [*AccessTokenSerializer.Meta.fields, "token"]
