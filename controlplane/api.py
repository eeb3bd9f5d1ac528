"""API conventions shared by every app: the error body and its handler.

Every error answers ``{"error": {"code": ..., "message": ..., "fields": {...}}}``.
"""

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from controlplane.errors import ServiceError


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail) -> dict:
    if isinstance(detail, dict):
        return {
            key: [str(item) for item in (value if isinstance(value, list) else [value])]
            for key, value in detail.items()
        }
    return {}


def exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        response = Response(error_body(exc.code, exc.message, exc.fields), status=exc.status)
        return response
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {}
        message = "; ".join(exc.messages)
        return Response(error_body("invalid", message, fields), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = getattr(exc, "detail", None)
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(detail)
        if isinstance(detail, list):
            message = "; ".join(str(item) for item in detail)
        else:
            message = "; ".join(f"{key}: {' '.join(value)}" for key, value in fields.items()) or "Invalid input."
        code = "invalid"
    else:
        message = str(detail) if detail is not None else str(exc)
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    response.data = error_body(str(code), message, fields if isinstance(exc, exceptions.ValidationError) else None)
    return response


# -- OpenAPI: every operation documents the common error body ---------------------------------

from drf_spectacular.openapi import AutoSchema as _AutoSchema  # noqa: E402
from drf_spectacular.utils import inline_serializer  # noqa: E402
from rest_framework import serializers  # noqa: E402

ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorDetail",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "fields": serializers.DictField(child=serializers.ListField(child=serializers.CharField())),
            },
        )
    },
)

COMMON_ERRORS = {
    "400": "Invalid input; `fields` names each bad field.",
    "401": "Not authenticated.",
    "403": "Authenticated, but the role or token scope does not allow this.",
    "404": "No such object, or it belongs to a project you are not a member of.",
    "429": "Too many requests; retry after the Retry-After header.",
}
WRITE_ERRORS = {
    "402": "The project's wallet cannot cover this.",
    "409": "The object's state does not allow this now (busy, already stopped, quota, name taken...).",
    "422": "The Idempotency-Key was used with a different request.",
}


class AutoSchema(_AutoSchema):
    """drf-spectacular schema that adds the common error responses to every operation."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        errors = dict(COMMON_ERRORS)
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            errors.update(WRITE_ERRORS)
        for code, description in errors.items():
            if code not in responses:
                responses[code] = {
                    "content": {
                        "application/json": {"schema": self.resolve_serializer(ErrorSerializer, "response").ref}
                    },
                    "description": description,
                }
        return responses


# -- JSON for /api/ paths that no view matched (and for server errors there) ---------------


def _wants_json(request) -> bool:
    return request.path.startswith("/api/")


def handler404(request, exception=None):
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    if _wants_json(request):
        return JsonResponse(error_body("not_found", f"No API endpoint at {request.path}."), status=404)
    return page_not_found(request, exception)


def handler500(request):
    from django.http import JsonResponse
    from django.views.defaults import server_error

    if _wants_json(request):
        return JsonResponse(
            error_body("server_error", "Something went wrong on our side; it has been logged."), status=500
        )
    return server_error(request)
