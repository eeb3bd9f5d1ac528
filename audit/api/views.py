from rest_framework import generics
from rest_framework.pagination import CursorPagination

from accounts.choices import Role
from audit import selectors
from audit.choices import Action
from audit.models import AuditEvent
from controlplane.api import ProjectScopedMixin

from .serializers import AuditEventSerializer


class AuditEventPagination(CursorPagination):
    ordering = "-id"
    page_size = 50
    max_page_size = 500
    page_size_query_param = "page_size"


class ProjectAuditEventListApi(ProjectScopedMixin, generics.ListAPIView):
    """A project's audit events, newest first; needs the admin (or owner) role. ``?action=`` filters."""

    serializer_class = AuditEventSerializer
    pagination_class = AuditEventPagination
    project_role = Role.ADMIN

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return AuditEvent.objects.none()
        action = self.request.query_params.get("action", "")
        return selectors.event_list_for_project(project=self.project, action=action if action in Action.values else "")
