"""``Idempotency-Key`` for API writes (POST and DELETE under /api/).

The same key with the same request returns the first response (kept 24 h) with
``Idempotent-Replayed: true``; the same key with a different request is a 422;
while the first request is still running a second one gets 409. Keys are
scoped per user. Records live in the shared Django cache (Redis in production),
so every web process sees them.
"""

import hashlib
import json

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse, JsonResponse
from rest_framework.request import Request
from rest_framework.settings import api_settings

from controlplane.api import error_body

HEADER = "Idempotency-Key"
METHODS = {"POST", "DELETE"}
IN_PROGRESS_SECONDS = 120


def _user_id(request) -> int | None:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user.pk
    drf_request = Request(request)
    for authentication_class in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
        if authentication_class.__name__ == "SessionAuthentication":
            continue
        try:
            result = authentication_class().authenticate(drf_request)
        except Exception:  # the view will answer 401/403 itself
            return None
        if result:
            return result[0].pk
    return None


def _conflict(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status)


class IdempotencyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        key = request.headers.get(HEADER)
        if not key or request.method not in METHODS or not request.path.startswith("/api/"):
            return self.get_response(request)
        if len(key) > 255:
            return _conflict(400, "invalid", f"{HEADER} is limited to 255 characters.")
        user_id = _user_id(request)
        if user_id is None:
            return self.get_response(request)
        fingerprint = hashlib.sha256(
            b"\0".join([request.method.encode(), request.get_full_path().encode(), request.body])
        ).hexdigest()
        cache_key = f"idempotency:{user_id}:{hashlib.sha256(key.encode()).hexdigest()}"
        record = cache.get(cache_key)
        if record is None and cache.add(
            cache_key, {"state": "running", "fingerprint": fingerprint}, IN_PROGRESS_SECONDS
        ):
            return self._run_and_store(request, cache_key, fingerprint)
        record = record or cache.get(cache_key) or {}
        if record.get("fingerprint") != fingerprint:
            return _conflict(
                422, "idempotency_key_reused", f"This {HEADER} was used for a different request; use a new key."
            )
        if record.get("state") != "done":
            return _conflict(
                409, "idempotency_in_progress", f"A request with this {HEADER} is still being processed; retry shortly."
            )
        response = HttpResponse(record["body"], status=record["status"], content_type=record["content_type"])
        for name, value in record["headers"].items():
            response[name] = value
        response["Idempotent-Replayed"] = "true"
        return response

    def _run_and_store(self, request, cache_key: str, fingerprint: str):
        try:
            response = self.get_response(request)
        except BaseException:
            cache.delete(cache_key)
            raise
        if response.status_code >= 500 or getattr(response, "streaming", False):
            cache.delete(cache_key)
            return response
        if hasattr(response, "render") and not response.is_rendered:
            response.render()
        headers = {name: response[name] for name in ("Location",) if response.has_header(name)}
        record = {
            "state": "done",
            "fingerprint": fingerprint,
            "status": response.status_code,
            "body": response.content.decode(response.charset or "utf-8"),
            "content_type": response.get("Content-Type", "application/json"),
            "headers": headers,
        }
        cache.set(cache_key, record, settings.IDEMPOTENCY_TTL_SECONDS)
        json.dumps(record)  # records must stay JSON-friendly for any cache backend
        return response
