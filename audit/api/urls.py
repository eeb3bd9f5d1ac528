from django.urls import path

from . import views

urlpatterns = [
    path(
        "projects/<slug:slug>/audit-events/",
        views.ProjectAuditEventListApi.as_view(),
        name="project-audit-events",
    ),
]
