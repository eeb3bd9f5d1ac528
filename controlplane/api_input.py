"""How the API reads a request: the JSON parser and the filter backend
(REST_FRAMEWORK DEFAULT_PARSER_CLASSES / DEFAULT_FILTER_BACKENDS). Their own
module: DRF imports the classes in those settings while rest_framework.views
loads, and controlplane.api imports rest_framework.views."""

import codecs
import json
import math

from django import forms
from django.conf import settings
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import exceptions, parsers, status


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = "The request body is too large."


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON.")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"The number {text} is out of range.")
    return value


def _too_deep(data, limit: int) -> bool:
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (value.values() if isinstance(value, dict) else value))
    return False


class JSONParser(parsers.JSONParser):
    """The API's only parser: strict JSON (no NaN/Infinity, no number that
    overflows to infinity), at most ``max_depth`` levels of nesting and
    DATA_UPLOAD_MAX_MEMORY_SIZE bytes (413). Each is a clear 4xx, never a 500."""

    max_depth = 32

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
        too_deep = f"JSON nested too deeply: at most {self.max_depth} levels."
        try:
            data = json.loads(codecs.decode(raw, encoding), parse_constant=_refuse_constant, parse_float=_finite_float)
        except RecursionError:
            raise exceptions.ParseError(too_deep) from None
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error: {exc}") from None
        if _too_deep(data, self.max_depth):
            raise exceptions.ParseError(too_deep)
        return data


class FilterBackend(DjangoFilterBackend):
    """django-filter, except that a choice or number filter given an empty value
    (``?status=``) is a 400, not ignored: the schema lists the values it takes, and
    "" is not one. (For a text filter "" is a string like any other.) A yes/no
    filter takes ``true`` or ``false`` only (django-filter ignored ``?enabled=null``)."""

    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is not None:
            empty = [
                name
                for name, field in filterset.filters.items()
                if request.query_params.get(name) == "" and field.field_class is not forms.CharField
            ]
            if empty:
                raise exceptions.ValidationError({name: ["Give a value or leave the parameter out."] for name in empty})
            not_boolean = [
                name
                for name, field in filterset.filters.items()
                if field.field_class is forms.NullBooleanField
                and any(value not in ("true", "false") for value in request.query_params.getlist(name))
            ]
            if not_boolean:
                raise exceptions.ValidationError({name: ["Must be true or false."] for name in not_boolean})
        return filterset
