"""/healthz: the process answers. /readyz: database, broker and a worker are all fine."""

import time

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from controlplane.celery import app
from workers.selectors import worker_list_alive


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> dict:
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


def _check_broker() -> dict:
    started = time.monotonic()
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1), "transport": conn.transport_cls}


def _check_workers() -> dict:
    alive = list(worker_list_alive().values("hostname", "queues", "last_seen"))
    return {"ok": bool(alive), "alive": len(alive), "workers": [w["hostname"] for w in alive]}


@never_cache
@require_GET
def readyz(request):
    checks = {}
    for name, check in (("database", _check_database), ("broker", _check_broker), ("workers", _check_workers)):
        try:
            checks[name] = check()
        except Exception as exc:  # any failure is "not ready", with the reason
            checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    ready = all(c["ok"] for c in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    return JsonResponse(body, status=200 if ready else 503)
