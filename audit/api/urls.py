from django.urls import path

from . import views

urlpatterns = [
    path("security-events/", views.SecurityEventListApi.as_view(), name="security-events"),
    path(
        "projects/<slug:slug>/audit-events/",
        views.ProjectAuditEventListApi.as_view(),
        name="project-audit-events",
    ),
]
