from csp.decorators import csp_replace
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from audit import views as audit_views

from . import health, metrics

# The API docs pages (drf-spectacular's Swagger UI and Redoc) start with inline script and style.
_docs_csp = csp_replace({"script-src": ["'self'", "'unsafe-inline'"], "style-src": ["'self'", "'unsafe-inline'"]})

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("admin/security/", admin.site.admin_view(audit_views.security_events), name="security-events"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("controlplane.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", _docs_csp(SpectacularSwaggerView.as_view(url_name="schema")), name="api-docs"),
    path("api/redoc/", _docs_csp(SpectacularRedocView.as_view(url_name="schema")), name="api-redoc"),
    path("projects/<slug:slug>/audit/", include("audit.urls")),
    path("", include("accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("billing/", include("billing.urls")),
    path("", include("controlplane.portal.urls")),
    path("", include("compute.urls")),
    path("", include("notifications.urls")),
]

handler400 = "controlplane.api.handler400"
handler403 = "controlplane.api.handler403"
handler404 = "controlplane.api.handler404"
handler500 = "controlplane.api.handler500"
