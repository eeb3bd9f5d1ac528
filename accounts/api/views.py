"""/api/v1/ for accounts: projects (addressed by slug), members, invitations, API tokens.

Querysets are scoped to the caller's memberships, so another project is a
404; roles are checked by controlplane.api.ProjectScopedMixin and the services (403)."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import PermissionDenied, Throttled
from rest_framework.response import Response

from controlplane.api import SLUG_PATTERN, ProjectScopedMixin

from .. import selectors, services
from ..choices import Role
from ..models import AccessToken, Invitation, Membership, Project
from ..security import check_recent_otp, recent_otp_ok, token_creation_allowed
from .serializers import (
    AccessTokenCreatedSerializer,
    AccessTokenSerializer,
    InvitationSerializer,
    MemberSerializer,
    ProjectSerializer,
    ProjectUpdateSerializer,
    RoleSerializer,
)


class ProjectViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    serializer_class = ProjectSerializer
    lookup_field = "slug"
    lookup_value_regex = SLUG_PATTERN

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Project.objects.none()
        return selectors.project_list_with_roles(user=self.request.user).order_by("name", "pk")

    def perform_create(self, serializer):
        project = services.project_create(name=serializer.validated_data["name"], owner=self.request.user)
        serializer.instance = self.get_queryset().get(pk=project.pk)

    @extend_schema(request=ProjectUpdateSerializer, responses={200: ProjectSerializer})
    def partial_update(self, request, slug=None):
        project = self.get_object()
        body = ProjectUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.project_update(
            project=project,
            actor=request.user,
            request=request,
            second_factor_fresh=recent_otp_ok(request),
            **body.validated_data,
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=project.pk)).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, slug=None):
        project = self.get_object()
        check_recent_otp(request)
        services.project_delete(project=project, actor=request.user, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberViewSet(ProjectScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Any member sees the members; changing roles and removing others are for
    admins (owners for owners), and anyone may remove themselves (leave)."""

    serializer_class = MemberSerializer
    pagination_class = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Membership.objects.none()
        return selectors.membership_list(project=self.project)

    @extend_schema(request=RoleSerializer, responses={200: MemberSerializer})
    def partial_update(self, request, slug=None, pk=None):
        membership = self.get_object()
        body = RoleSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        if "role" in body.validated_data:
            services.membership_role_change(
                membership=membership, actor=request.user, role=body.validated_data["role"], request=request
            )
        return Response(self.get_serializer(self.get_queryset().get(pk=membership.pk)).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, slug=None, pk=None):
        services.membership_remove(membership=self.get_object(), actor=request.user, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationViewSet(ProjectScopedMixin, mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Open invitations: project admins list, send and withdraw them (inviting an owner needs an owner)."""

    serializer_class = InvitationSerializer
    pagination_class = None
    project_role = Role.ADMIN
    lookup_value_regex = r"\d+"  # /invitations/abc/ is a 404, not a 500 from the selector

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Invitation.objects.none()
        return selectors.invitation_list_open(project=self.project)

    def perform_create(self, serializer):
        invitation, _ = services.invitation_create(
            project=self.project,
            actor=self.request.user,
            email=serializer.validated_data["email"],
            role=serializer.validated_data["role"],
            request=self.request,
        )
        serializer.instance = invitation

    @extend_schema(responses={204: None})
    def destroy(self, request, slug=None, pk=None):
        invitation = selectors.invitation_get_in_project(project=self.project, pk=pk)
        services.invitation_revoke(invitation=invitation, actor=request.user, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AccessTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The caller's personal access tokens. Creating one needs a logged-in
    session (not a token) and, with 2FA, a current code (X-OTP-Token)."""

    serializer_class = AccessTokenSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AccessToken.objects.none()
        return selectors.access_token_list_for_user(user=self.request.user)

    @extend_schema(request=AccessTokenSerializer, responses={201: AccessTokenCreatedSerializer})
    def create(self, request):
        if isinstance(request.auth, AccessToken):
            raise PermissionDenied("A token cannot create tokens: use the portal or a logged-in session.")
        body = AccessTokenSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        check_recent_otp(request)
        if not token_creation_allowed(request):
            raise Throttled(detail="You have created many tokens in a short time; try again later.")
        token, raw = services.token_create(
            user=request.user,
            request=request,
            code_verified_now=getattr(request, "otp_code_verified", False),
            **body.validated_data,
        )
        token.token = raw
        return Response(AccessTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.token_revoke(token=self.get_object(), actor=request.user, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)
