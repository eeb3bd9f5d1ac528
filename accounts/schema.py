"""OpenAPI description of the token authentication (drf-spectacular finds it on import)."""

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.TokenAuthentication"
    name = "bearerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal access token (cpat_...), created under Security → API tokens.",
        }


class SessionAuthenticationScheme(OpenApiAuthenticationExtension):
    """The session cookie, as drf-spectacular describes DRF's own session authentication."""

    target_class = "accounts.authentication.SessionAuthentication"
    name = "cookieAuth"
    match_subclasses = True
    priority = 1

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}
