"""/api/v1/ssh-keys/: the caller's key library (personal keys and their projects' keys)."""

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from .. import selectors, services
from ..models import Project, SSHKey


class SSHKeySerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Project.objects.all(),
        required=False,
        allow_null=True,
        help_text="A project's slug to share the key with its members; empty for a personal key.",
    )
    added_by = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = SSHKey
        fields = [
            "id",
            "name",
            "public_key",
            "project",
            "key_type",
            "bits",
            "fingerprint",
            "comment",
            "added_by",
            "created_at",
        ]
        read_only_fields = ["key_type", "bits", "fingerprint", "comment", "added_by", "created_at"]
        validators = []  # uniqueness is the service's (a clear 409), not DRF's guess at the constraints
        extra_kwargs = {"public_key": {"help_text": "One OpenSSH public key line (ed25519, RSA ≥ 2048, ECDSA)."}}

    def validate_project(self, project):
        if project is not None and not project.memberships.filter(user=self.context["request"].user).exists():
            raise serializers.ValidationError("No such project.")
        return project


class SSHKeyFilter(filters.FilterSet):
    project = filters.CharFilter(field_name="project__slug", help_text="Only this project's keys.")
    personal = filters.BooleanFilter(field_name="project", lookup_expr="isnull", help_text="Only personal keys.")

    class Meta:
        model = SSHKey
        fields = ["project", "personal"]


class SSHKeyViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Saved SSH keys. A VM request picks one with ``ssh_key`` (its id); the VM keeps a
    copy of the key text, so deleting a saved key changes no VM."""

    serializer_class = SSHKeySerializer
    filterset_class = SSHKeyFilter
    pagination_class = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return SSHKey.objects.none()
        return selectors.ssh_key_list_for_user(user=self.request.user)

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.ssh_key_create(
            user=self.request.user,
            name=data["name"],
            public_key=data["public_key"],
            project=data.get("project"),
            request=self.request,
        )

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.ssh_key_delete(key=self.get_object(), user=request.user, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)
