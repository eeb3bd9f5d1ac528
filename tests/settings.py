"""Test settings: the real PostgreSQL and Redis of this machine by default.

``DATABASE_URL`` / ``CELERY_BROKER_URL`` override them (pytest-django creates a
separate ``test_<name>`` database). The engine's timings are shortened so
crash and retry tests finish in seconds.
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/controlplane")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("CELERY_RESULT_BACKEND", os.environ["CELERY_BROKER_URL"])
# Rate limits live in the cache: the real Redis (keys prefixed; tests/fixtures/accounts.py isolates each test).
os.environ.setdefault("CACHE_URL", os.environ["CELERY_BROKER_URL"])
os.environ.setdefault("CELERY_VISIBILITY_TIMEOUT", "30")
os.environ.setdefault("CELERY_DEFAULT_QUEUE", "control")
os.environ.setdefault("ENGINE_LEASE_SECONDS", "6")
os.environ.setdefault("ENGINE_RELAY_AFTER_SECONDS", "2")
os.environ.setdefault("ENGINE_POLL_MIN_SECONDS", "0.1")
os.environ.setdefault("ENGINE_POLL_MAX_SECONDS", "1")
os.environ.setdefault("ENGINE_RETRY_BASE_SECONDS", "0.2")
os.environ.setdefault("ENGINE_RETRY_MAX_SECONDS", "2")
os.environ.setdefault("WORKER_HEARTBEAT_SECONDS", "1")
os.environ.setdefault("ENGINE_MISSING_GRACE_SECONDS", "2")
os.environ.setdefault("WEBHOOK_RETRY_BASE_SECONDS", "0.2")
os.environ.setdefault("WEBHOOK_RETRY_MAX_SECONDS", "1")
os.environ.setdefault("WEBHOOK_MAX_ATTEMPTS", "4")
os.environ.setdefault("WEBHOOK_DISABLE_AFTER_FAILURES", "6")
os.environ.setdefault("WEBHOOK_TIMEOUT_SECONDS", "5")
os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE_TARGETS", "1")  # the receivers in tests listen on loopback

from controlplane.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405

# The audit tables refuse TRUNCATE (audit/migrations/0002); transactional tests flush with it.
DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c audit.allow_truncate=on"  # noqa: F405
