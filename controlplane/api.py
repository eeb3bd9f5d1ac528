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
