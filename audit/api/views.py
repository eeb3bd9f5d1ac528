import re

from rest_framework import generics
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination

from accounts.choices import Role
from accounts.permissions import ReadOnlyTokenPermission, StaffPower
from audit import selectors
from audit.choices import Action
from audit.models import AuditEvent
from audit.severity import Severity, severity_of
from controlplane.api import ProjectScopedMixin

from .serializers import AuditEventSerializer, SecurityEventSerializer


class AuditEventPagination(CursorPagination):
    """DRF's cursor, whose position (the last id seen) must be a whole number: a crafted
    cursor carrying text (``p=2026-01-01``) was a 500 when the query ran; now a 404
    "Invalid cursor", like any cursor that cannot be decoded."""

    ordering = "-id"
    page_size = 50
    max_page_size = 500
    page_size_query_param = "page_size"

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None and not re.fullmatch("-?[0-9]+", cursor.position):
            raise NotFound(self.invalid_cursor_message)
        return cursor


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


class SecurityEventListApi(generics.ListAPIView):
    """Security events of every project, newest first, for operators (staff power:
    docs/SECURITY.md). Filters: ``severity`` (minimum), ``action``, ``actor`` (contains),
    ``ip`` (address or its beginning)."""

    serializer_class = SecurityEventSerializer
    pagination_class = AuditEventPagination
    permission_classes = [ReadOnlyTokenPermission, StaffPower]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return AuditEvent.objects.none()
        params = self.request.query_params
        severity, action = params.get("severity", Severity.INFO), params.get("action", "")
        if severity not in Severity.values:
            raise ValidationError({"severity": [f"One of {', '.join(Severity.values)}."]})
        if action and severity_of(action) is None:
            raise ValidationError({"action": ["Not a security event action."]})
        return selectors.security_event_list(
            severity=severity, action=action, actor=params.get("actor", "")[:200], ip=params.get("ip", "")[:45]
        )
