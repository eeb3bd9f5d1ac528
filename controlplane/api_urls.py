"""/api/v1/: each app contributes its routes."""

from django.urls import include, path

urlpatterns = [
    path("", include("compute.api.urls")),
    path("", include("accounts.api.urls")),
    path("", include("audit.api.urls")),
    path("", include("billing.api.urls")),
    path("", include("notifications.api.urls")),
]
