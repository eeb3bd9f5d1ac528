"""API conventions shared by every app: the error body and its handler, the
common error responses in the schema, the JSON parser, id inputs, project-scoped
views, and a page whose count comes with its rows.

Every error answers ``{"error": {"code": ..., "message": ..., "fields": {...}}}``,
also the errors Django answers before a view runs (400, 403, 404, 413, 500).
"""

import re
import sys
from datetime import UTC

import django_filters
from django import forms
from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import EmptyPage, PageNotAnInteger
from django.core.paginator import Paginator as DjangoPaginator
from django.core.validators import RegexValidator
from django.db.models import IntegerField, QuerySet, Subquery
from django.http import Http404, JsonResponse
from django.views.defaults import bad_request, page_not_found, permission_denied, server_error
from drf_spectacular.openapi import AutoSchema as _AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.choices import Role
from accounts.selectors import project_for_user
from controlplane.dbroles import database_error_response
from controlplane.errors import ServiceError

# What a project's slug looks like in API routes: /api/v1/projects/{slug}/... (Django's <slug:> converter).
SLUG_PATTERN = "[-a-zA-Z0-9_]+"


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    """The one error shape; each field's problems are a list of messages (a service may name one)."""
    fields = {
        name: [problems] if isinstance(problems, str) else list(problems) for name, problems in (fields or {}).items()
    }
    return {"error": {"code": code, "message": message, "fields": fields}}


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
    "413": "The body is larger than the server accepts (DATA_UPLOAD_MAX_MEMORY_SIZE).",
    "415": "The body is not JSON (send Content-Type: application/json).",
    "422": "The Idempotency-Key was used with a different request.",
}


class AutoSchema(_AutoSchema):
    """drf-spectacular schema that adds the common error responses to every
    operation, describes the project ``slug`` in paths, and says that a
    required text field needs a non-blank character (DRF trims whitespace and
    then refuses an empty value, which ``minLength`` alone does not say)."""

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        plain_text = schema.get("type") == "string" and not {"format", "pattern", "enum"} & set(schema)
        if (
            direction == "request"
            and plain_text
            and isinstance(field, serializers.CharField)
            and field.trim_whitespace
            and not field.allow_blank
            and not any(isinstance(validator, RegexValidator) for validator in field.validators)
        ):
            schema["pattern"] = r"\S"
        return schema

    def _resolve_path_parameters(self, variables):
        parameters = super()._resolve_path_parameters(variables)
        if self.path.startswith("/api/v1/projects/{slug}/"):
            for parameter in parameters:
                if parameter["name"] == "slug":
                    parameter["description"] = "The project's slug (as listed by GET /api/v1/projects/)."
        return parameters

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


# -- Input: ids (JSON bodies: controlplane.api_input) -----------------------------------------


class IdField(serializers.PrimaryKeyRelatedField):
    """A related object by its integer id. DRF's own field casts: 1.5 picked
    object 1, and ``true`` object 1 too; here anything but a JSON integer is refused."""

    default_error_messages = {"not_an_id": "Must be a whole number: the id of the object."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("not_an_id")
        return super().to_internal_value(data)


# What JSON type each kind of field takes, as the schema says (DRF itself casts:
# "name": 0 became "0", "read_only": 1 became true, "count": "7" became 7).
_JSON_TYPES = (
    (serializers.BooleanField, (bool,), "Must be true or false."),
    (serializers.IntegerField, (int,), "Must be a whole number."),
    (serializers.FloatField, (int, float), "Must be a number."),
    (serializers.ListField, (list,), "Must be a list."),
    (serializers.DictField, (dict,), "Must be an object."),
    (serializers.JSONField, None, ""),
    (serializers.ManyRelatedField, (list,), "Must be a list."),
    (serializers.ListSerializer, (list,), "Must be a list."),
    (serializers.BaseSerializer, (dict,), "Must be an object."),
    (IdField, None, ""),  # IdField says it itself
    (serializers.Field, (str,), "Must be a string."),  # text, choices, dates, decimals, slugs
)


class JSONTypesMixin:
    """For API serializers that take input: each field gets the JSON type the
    schema gives it, or a 400 naming the field."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            errors = {}
            for field in self._writable_fields:
                value = data.get(field.field_name)
                if value is None:  # absent, or null: DRF's own required / allow_null rules
                    continue
                types, message = next((t, m) for kind, t, m in _JSON_TYPES if isinstance(field, kind))
                if types and (isinstance(value, bool) and bool not in types or not isinstance(value, types)):
                    errors[field.field_name] = [message]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


# RFC 3339 (the schema's ``date-time``): a full date, a time and an offset; "t"/"z" may be lowercase.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


@extend_schema_field(OpenApiTypes.DATETIME)
class DateTimeParameter(serializers.DateTimeField):
    """A query parameter holding an RFC 3339 date-time, as the schema's ``date-time``
    says, and nothing looser: Django's parser also takes a bare date, a space for the
    ``T`` or no offset, which the schema calls invalid. Read as UTC (in the site's zone
    the last hours of year 9999 would overflow); out of range after the offset
    (``0001-01-01T00:00:00+05:00``) is DRF's 400, never an OverflowError."""

    def __init__(self, **kwargs):
        super().__init__(default_timezone=UTC, **kwargs)

    def to_internal_value(self, value):
        if not isinstance(value, str) or not _RFC3339.fullmatch(value):
            self.fail("invalid", format="RFC 3339, e.g. 2026-01-31T18:30:00Z")
        return super().to_internal_value(value.upper())


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """``?vm=<id>``-style filters: a whole number, matched as is, so another
    tenant's id and an id that does not exist both give an empty list (a
    ModelChoiceFilter answers 400 for the second: an existence leak)."""

    field_class = forms.IntegerField


@extend_schema_field({"type": "string", "pattern": f"^{SLUG_PATTERN}$"})
class SlugFilter(django_filters.CharFilter):
    """``?project__slug=<slug>``-style filters: a slug or a 400 (not any text)."""

    field_class = forms.SlugField


# -- Views under /api/v1/projects/{slug}/ ------------------------------------------------------


class ProjectScopedMixin:
    """For API views under ``/api/v1/projects/{slug}/``: before the handler runs,
    ``self.project`` is resolved by ``accounts.selectors.project_for_user`` for a
    caller holding ``project_role`` (``project_role_needed()`` may ask more of
    some methods), so another project is a 404 and too weak a role a 403.
    ``staff_override`` lets operators in whatever their membership."""

    project_role = Role.VIEWER
    staff_override = False

    def project_role_needed(self) -> str:
        return self.project_role

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.project = project_for_user(
            user=request.user,
            slug=self.kwargs["slug"],
            role=self.project_role_needed(),
            staff_override=self.staff_override,
        )


# -- A page and its count in one statement ----------------------------------------------------


class _CountOf(Subquery):
    """``COUNT(*)`` of a queryset as a scalar subquery: it depends on no outer row, so
    PostgreSQL runs it once per statement (an InitPlan) and SQLite likewise."""

    template = "(SELECT COUNT(*) FROM (%(subquery)s) _counted)"


COUNT = "_page_total"


def with_total(queryset: QuerySet, counted: QuerySet | None = None) -> QuerySet:
    """``queryset`` with the number of rows of ``counted`` (default: ``queryset``) as each row's
    last column (``COUNT``): ``CountedPaginator``'s statement before its LIMIT and OFFSET."""
    total = _CountOf((queryset if counted is None else counted).order_by().values("pk"), output_field=IntegerField())
    return queryset.annotate(**{COUNT: total})


class CountedPaginator(DjangoPaginator):
    """Django's paginator, except that the total comes with the page's rows: one statement,
    ``SELECT ..., (SELECT COUNT(*) FROM (<the same filter>)) ... LIMIT n OFFSET m``, instead
    of a ``COUNT(*)`` and then the page. Every page number is judged as Django judges it (not a
    whole number, below 1, past the last page: the same exceptions); a page past the end has no
    row to carry the count, and needs none to know it is past the end.

    ``counted`` is the queryset whose rows are counted (default: the listed one); a
    ``values_list`` page can count its model queryset, without the joins its columns need.
    ``fetch(offset, limit)``, if given, reads the rows of ``with_total(...)`` another way (a
    statement compiled once: ``controlplane.compiled.CompiledQuery.rows``)."""

    COUNT = COUNT
    NO_SUCH_PAGE = 2**31  # above any table's row count / page size: EmptyPage without a query

    def __init__(self, object_list, per_page: int, *, counted: QuerySet | None = None, fetch=None):
        super().__init__(object_list, per_page)
        self.counted, self.fetch = counted, fetch

    def page(self, number):
        if "count" in self.__dict__:  # counted already (DRF's ?page=last): Django's way
            return super().page(number)
        try:
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger(self.error_messages["invalid_page"]) from None
        if number < 1:
            raise EmptyPage(self.error_messages["min_page"])
        if number >= self.NO_SUCH_PAGE:
            raise EmptyPage(self.error_messages["no_results"])
        bottom = (number - 1) * self.per_page
        if self.fetch is not None:
            rows = self.fetch(bottom, self.per_page)
        else:
            rows = list(with_total(self.object_list, self.counted)[bottom : bottom + self.per_page])
        if not rows and number > 1:
            raise EmptyPage(self.error_messages["no_results"])
        self.count = _strip_count(rows, self.COUNT)
        return self._get_page(rows, number, self)


def _strip_count(rows: list, name: str) -> int:
    """The total each row carries, taken off the rows (tuples, dicts or model instances)."""
    if not rows:
        return 0
    first = rows[0]
    if isinstance(first, tuple):
        total = first[-1]
        rows[:] = [row[:-1] for row in rows]
    elif isinstance(first, dict):
        total = first[name]
        for row in rows:
            del row[name]
    else:
        total = getattr(first, name)
        for row in rows:
            delattr(row, name)
    return total


class CountedPagination(PageNumberPagination):
    """DRF's page-number pagination (same query parameters, body and errors) with the count
    in the page's statement (``CountedPaginator``). ``paginate_queryset(..., counted=qs)``
    counts ``qs`` instead of the listed queryset; ``fetch=`` as ``CountedPaginator``'s."""

    counted = fetch = None

    def django_paginator_class(self, object_list, per_page):  # DRF: self.django_paginator_class(queryset, size)
        return CountedPaginator(object_list, per_page, counted=self.counted, fetch=self.fetch)

    def paginate_queryset(self, queryset, request, view=None, *, counted=None, fetch=None):
        self.counted, self.fetch = counted, fetch
        return super().paginate_queryset(queryset, request, view)


# -- JSON for /api/ paths that no view matched (and for server errors there) ---------------


def _wants_json(request) -> bool:
    return request.path.startswith("/api/")


def handler400(request, exception=None):
    if not _wants_json(request):
        return bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        message = f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
        return JsonResponse(error_body("request_too_large", message), status=413)
    return JsonResponse(error_body("bad_request", "The request could not be understood."), status=400)


def handler403(request, exception=None):
    if _wants_json(request):
        return JsonResponse(error_body("permission_denied", "You may not do this."), status=403)
    return permission_denied(request, exception)


def handler404(request, exception=None):
    if _wants_json(request):
        return JsonResponse(error_body("not_found", f"No API endpoint at {request.path}."), status=404)
    return page_not_found(request, exception)


def handler500(request):
    unavailable = database_error_response(request, sys.exc_info()[1])  # raised outside a view: a middleware's query
    if unavailable is not None:
        return unavailable
    if _wants_json(request):
        return JsonResponse(
            error_body("server_error", "Something went wrong on our side; it has been logged."), status=500
        )
    return server_error(request)
