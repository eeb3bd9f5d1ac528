"""Settings, all from environment variables with safe embedded defaults.

The embedded default (no variables set) is a single-machine development
set-up: SQLite and a filesystem Celery broker under ``var/``, DEBUG off unless
asked, a secret key generated once and kept in ``var/secret_key``.
Production sets ``CONTROLPLANE_ENV=production`` and must then provide
``SECRET_KEY``, ``DATABASE_URL``, ``CELERY_BROKER_URL`` and ``ALLOWED_HOSTS``.
See docs/CONFIGURATION.md for every variable.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CONTROLPLANE_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


PRODUCTION = os.environ.get("CONTROLPLANE_ENV", "development") == "production"
DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when CONTROLPLANE_ENV=production.")
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
# Key for encrypting hypervisor credentials at rest (Fernet, derived from
# FIELD_ENCRYPTION_KEY or SECRET_KEY). Rotation: see docs/OPERATIONS.md.
FIELD_ENCRYPTION_KEY = os.environ.get("FIELD_ENCRYPTION_KEY", "")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# Links in mail and webhooks. Unset, it follows `make up`'s BIND (web, worker and beat all get it).
SITE_URL = os.environ.get("SITE_URL") or f"http://{os.environ.get('BIND') or '127.0.0.1:8000'}"

# Optional pieces, switched on by their variables (plain `if` blocks below).
# Google sign-in only when both variables are set.
GOOGLE_CLIENT_ID = os.environ.get("GOOGLE_CLIENT_ID", "")
GOOGLE_CLIENT_SECRET = os.environ.get("GOOGLE_CLIENT_SECRET", "")
_google_sign_in = bool(GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET)

INSTALLED_APPS = [
    # Operators' admin requires a verified OTP device: every admin.site.register()
    # lands on accounts.admin_site.AdminSite through this AdminConfig.
    "accounts.apps.OTPAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "csp",
    # Project apps
    "audit",
    "accounts",
    "compute",
    "billing",
    "workers",
    "notifications",  # reads every app above, nothing imports it (docs/ARCHITECTURE.md)
    # Sign-up and login (django-allauth), 2FA (django-otp), lockout (django-axes): docs/SECURITY.md
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    # django-otp's devices are accounts.TOTPDevice / BackupCodeDevice (secrets encrypted or hashed),
    # not its otp_totp / otp_static plugins (accounts/devices.py).
    "django_otp",
    "axes",
]
if _google_sign_in:
    INSTALLED_APPS += ["allauth.socialaccount.providers.google"]

# Requests pass down this list and responses back up it.
MIDDLEWARE = [
    # First: one request id (audit/request_meta.py trust rule) on the response, every log line and audit event.
    "audit.middleware.RequestIDMiddleware",
    # The web role's PostgreSQL timeouts before anything queries; a lock timeout answers 503 (controlplane/dbroles.py).
    "controlplane.dbroles.DatabaseRoleMiddleware",
    # HTTPS redirect, HSTS and nosniff before anything does work.
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy header on every response (CONTENT_SECURITY_POLICY below; django-csp).
    "csp.middleware.CSPMiddleware",
    # Static files answered right after the security headers, before sessions and auth (WhiteNoise's rule).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # The session, which everything below it reads (auth, messages, OTP, allauth).
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Host check and APPEND_SLASH redirects before CSRF and views.
    "django.middleware.common.CommonMiddleware",
    # CSRF before any middleware or view that acts on a POST.
    "django.middleware.csrf.CsrfViewMiddleware",
    # request.user from the session.
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified() (django-otp): needs the user.
    "django_otp.middleware.OTPMiddleware",
    # allauth's login flow state: needs the user and the session.
    "allauth.account.middleware.AccountMiddleware",
    # 2FA enforcement for session users: needs is_verified() from OTPMiddleware.
    "accounts.middleware.TwoFactorMiddleware",
    # Times on pages in the user's own zone (Profile page): needs request.user.
    "accounts.middleware.TimeZoneMiddleware",
    # Flash messages stored in the session.
    "django.contrib.messages.middleware.MessageMiddleware",
    # X-Frame-Options: DENY on every response.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # request.htmx for the portal's partial pages.
    "django_htmx.middleware.HtmxMiddleware",
    # Idempotency-Key replay for API writes: keys are per user, so after authentication.
    "controlplane.idempotency.IdempotencyMiddleware",
    # Notes the session's last use for the security page's session list (after auth, below 2FA).
    "accounts.middleware.SessionActivityMiddleware",
    # Last, as django-axes requires (it reads the outcome of the login views above).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "controlplane.urls"
WSGI_APPLICATION = "controlplane.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # The portal's navigation (docs/PORTAL.md).
                "controlplane.portal.context.portal_nav",
                # The bell's unread count (docs/NOTIFICATIONS.md).
                "notifications.context.notification_bell",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
_default_db = f"sqlite:///{VAR_DIR / 'controlplane.sqlite3'}"
DATABASE_URL = os.environ.get("DATABASE_URL", _default_db)
if PRODUCTION and "DATABASE_URL" not in os.environ:
    raise ImproperlyConfigured("DATABASE_URL must be set when CONTROLPLANE_ENV=production.")
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
except ValueError as exc:  # unknown scheme: say which variable is wrong
    raise ImproperlyConfigured(f"DATABASE_URL is not a usable database URL: {exc}") from exc
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and scheduler share the file: wait for locks, write-ahead log,
    # and take the write lock at BEGIN so concurrent writers queue instead of failing.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# --- Internationalisation: store UTC, show Asia/Kolkata by default ------------
LANGUAGE_CODE = "en-in"
TIME_ZONE = os.environ.get("DISPLAY_TIME_ZONE", "Asia/Kolkata")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Pages load the portal's CSS and scripts with {% static %}. Hashed names need `collectstatic`
# (make up and deploy's install run it); before it has run (a fresh checkout, a test's
# subprocess) pages use the plain names and WhiteNoise serves the files from the apps.
if not PRODUCTION and not (STATIC_ROOT / "staticfiles.json").exists():
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    WHITENOISE_USE_FINDERS = True

# --- Email ----------------------------------------------------------------
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
if os.environ.get("EMAIL_HOST"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = os.environ["EMAIL_HOST"]
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Control Plane <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Security -------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must be set when CONTROLPLANE_ENV=production.")

# Content-Security-Policy (django-csp): the portal, the admin and the consoles load scripts,
# styles, images and fonts only from this site, never inline (htmx's indicator styles are off:
# templates/base.html); fetches and websockets (console, live updates) go to this site only
# ('self' covers ws:/wss: to the same host in CSP Level 3 browsers). The API docs pages
# loosen it for themselves (controlplane/urls.py). docs/SECURITY.md.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- REST framework -------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.TokenAuthentication",  # Authorization: Bearer <token>
        "accounts.authentication.SessionAuthentication",  # staff powers only once verified with a code
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "accounts.permissions.ReadOnlyTokenPermission",
    ],
    # JSON in, JSON out; the browsable HTML API only for a developer (DEBUG, not production).
    "DEFAULT_PARSER_CLASSES": ["controlplane.api_input.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "controlplane.api_output.JSONRenderer",  # DRF's bytes, encoded by orjson
        *(["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG and not PRODUCTION else []),
    ],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_SCHEMA_CLASS": "controlplane.api.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "controlplane.api.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("API_THROTTLE_ANON", "60/min"),
        "user": os.environ.get("API_THROTTLE_USER", "1200/min"),
    },
    "DEFAULT_FILTER_BACKENDS": [
        "controlplane.api_input.FilterBackend",  # django-filter's, refusing ?filter= with no value
        "rest_framework.filters.OrderingFilter",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Control Plane API",
    "DESCRIPTION": "Projects, VM requests, virtual machines and their operations, billing. Asynchronous actions "
    "answer 202 with the operation; poll /api/v1/operations/{id}/. Errors: "
    '{"error": {"code", "message", "fields"}}. POST/DELETE accept an Idempotency-Key header.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ActionEnum": "compute.choices.Action",
        "VMStatusEnum": "compute.choices.VMStatus",
        # Without it VMRequest's status enum is named VMStatusEnum too (COMPONENT_SPLIT_REQUEST cuts
        # "Request" off the component name) and one of the two choice sets silently wins.
        "VMRequestStatusEnum": "compute.choices.RequestStatus",
        "PowerStateEnum": "compute.choices.PowerState",
        "OperationStateEnum": "compute.choices.OperationState",
        "EventTypeEnum": "notifications.choices.EventType",
        # Snapshots and backups share one set of states (compute/choices.py): one enum for both.
        "CopyStateEnum": "compute.choices.BackupState",
    },
}
IDEMPOTENCY_TTL_SECONDS = env_int("IDEMPOTENCY_TTL_SECONDS", 24 * 3600)

# --- Celery ---------------------------------------------------------------
# Embedded default: kombu's filesystem transport, no server needed.
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if PRODUCTION and "CELERY_BROKER_URL" not in os.environ:
    raise ImproperlyConfigured("CELERY_BROKER_URL must be set when CONTROLPLANE_ENV=production.")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
# Seconds a Redis message may stay unacknowledged before it is redelivered.
# Must exceed the longest task run and every countdown/ETA we schedule.
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 3600)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 120)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 180)
CELERY_DEFAULT_QUEUE = os.environ.get("CELERY_DEFAULT_QUEUE", "control")
# A worker reuses its database connection for up to this many tasks (controlplane/celery.py);
# CONN_MAX_AGE and the health check still replace an old or broken one sooner.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
# Reconciliation and billing jobs: their own queue and worker, so they never take the
# relay's and reaper's slots on the control queue (controlplane/celery.py).
HOUSEKEEPING_QUEUE = os.environ.get("HOUSEKEEPING_QUEUE", "housekeeping")

# --- Operation engine -------------------------------------------------------
ENGINE = {
    # A running operation whose lease passed this is reaped (worker died).
    "LEASE_SECONDS": env_int("ENGINE_LEASE_SECONDS", 60),
    # Pending operations not picked up within this are re-published by the relay.
    "RELAY_AFTER_SECONDS": env_int("ENGINE_RELAY_AFTER_SECONDS", 30),
    "RELAY_INTERVAL_SECONDS": env_int("ENGINE_RELAY_INTERVAL_SECONDS", 10),
    "REAPER_INTERVAL_SECONDS": env_int("ENGINE_REAPER_INTERVAL_SECONDS", 15),
    "RECONCILE_INTERVAL_SECONDS": env_int("ENGINE_RECONCILE_INTERVAL_SECONDS", 60),
    # A VM missing on its hypervisor this long is flagged as lost.
    "MISSING_GRACE_SECONDS": env_int("ENGINE_MISSING_GRACE_SECONDS", 300),
    "POLL_MIN_SECONDS": float(os.environ.get("ENGINE_POLL_MIN_SECONDS", "0.5")),
    "POLL_MAX_SECONDS": float(os.environ.get("ENGINE_POLL_MAX_SECONDS", "10")),
    "RETRY_BASE_SECONDS": float(os.environ.get("ENGINE_RETRY_BASE_SECONDS", "2")),
    "RETRY_MAX_SECONDS": float(os.environ.get("ENGINE_RETRY_MAX_SECONDS", "300")),
    "WORKER_HEARTBEAT_SECONDS": env_int("WORKER_HEARTBEAT_SECONDS", 10),
    # /readyz wants a worker heartbeat younger than this.
    "WORKER_STALE_SECONDS": env_int("WORKER_STALE_SECONDS", 60),
}

# --- PostgreSQL timeouts per role of connection (controlplane/dbroles.py, docs/OPERATIONS.md) ---
# Milliseconds; 0 disables one. DB_<ROLE>_LOCK_TIMEOUT_MS, DB_<ROLE>_STATEMENT_TIMEOUT_MS and
# DB_<ROLE>_IDLE_IN_TRANSACTION_TIMEOUT_MS for ROLE in WEB, ENGINE, HOUSEKEEPING, BILLING.
_DB_TIMEOUT_DEFAULTS = {
    # role: (lock, statement, idle in transaction)
    "web": (3000, 30000, 60000),
    "engine": (5000, 30000, 30000),
    "housekeeping": (2000, 60000, 30000),
    "billing": (5000, 120000, 60000),
}
DB_TIMEOUTS = {
    role: {
        "lock_timeout": env_int(f"DB_{role.upper()}_LOCK_TIMEOUT_MS", lock),
        "statement_timeout": env_int(f"DB_{role.upper()}_STATEMENT_TIMEOUT_MS", statement),
        "idle_in_transaction_session_timeout": env_int(f"DB_{role.upper()}_IDLE_IN_TRANSACTION_TIMEOUT_MS", idle),
    }
    for role, (lock, statement, idle) in _DB_TIMEOUT_DEFAULTS.items()
}

# --- Reverse proxies and the audit log (docs/AUDIT.md, docs/SECURITY.md) ---------
# TRUSTED_PROXY_COUNT: how many reverse proxies are in front (allauth's rate limits
# and django-axes take the client address from X-Forwarded-For by it).
ALLAUTH_TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
# The proxies' own addresses (comma-separated CIDRs): only a connection from one of them
# sets the client address of audit events and the request id of the response, the logs
# and audit events (audit/request_meta.py). Default: loopback (nginx on this machine,
# as deploy/ installs it) once a proxy is declared, else nobody.
AUDIT_TRUSTED_PROXIES = env_list("AUDIT_TRUSTED_PROXIES", "127.0.0.0/8,::1/128" if ALLAUTH_TRUSTED_PROXY_COUNT else "")
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 365)
AUDIT_ARCHIVE_DIR = Path(os.environ.get("AUDIT_ARCHIVE_DIR", VAR_DIR / "audit-archive"))

# --- Accounts and security (docs/SECURITY.md) --------------------------------
# Sign-up and login (django-allauth), 2FA (django-otp), lockout (django-axes),
# API tokens; their apps and middleware are in the lists above.
AUTHENTICATION_BACKENDS = [
    "accounts.backends.LockoutBackend",  # django-axes: refuses locked-out logins first
    "allauth.account.auth_backends.AuthenticationBackend",
]

# Cache shared by every process (rate limits, API throttles, idempotency keys): Redis with CACHE_URL
# (redis:// or sentinel://; fails open while Redis is down, controlplane/cache.py), else a file cache
# under var/ (one machine).
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL:
    CACHES = {
        "default": {"BACKEND": "controlplane.cache.FailOpenRedisCache", "LOCATION": CACHE_URL, "KEY_PREFIX": "cp"}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "accounts.adapter.SocialAccountAdapter"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_CHANGE_EMAIL = True  # a new address replaces the old one only once verified
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_REAUTHENTICATION_REQUIRED = True  # email changes ask for the password again
ACCOUNT_EMAIL_NOTIFICATIONS = True  # mail the user when the password or email changes
ACCOUNT_LOGOUT_ON_GET = False
# Subjects and bodies of allauth's mail are branded with OPERATOR_NAME (accounts/adapter.py).
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if PRODUCTION else "http"
# allauth's rate limits (see docs/SECURITY.md); failed logins per account+IP are
# django-axes' job, these catch spraying from one address and slow attacks on one account.
ACCOUNT_RATE_LIMITS = {
    "login": os.environ.get("RATE_LIMIT_LOGIN", "30/m/ip"),
    "login_failed": os.environ.get("RATE_LIMIT_LOGIN_FAILED", "20/m/ip,20/h/key"),
    "signup": os.environ.get("RATE_LIMIT_SIGNUP", "10/m/ip,50/h/ip"),
    "reset_password": os.environ.get("RATE_LIMIT_RESET_PASSWORD", "20/m/ip,5/m/key"),
    "create_token": os.environ.get("RATE_LIMIT_CREATE_TOKEN", "10/h/user"),
}

SOCIALACCOUNT_PROVIDERS: dict = {}
if _google_sign_in:
    SOCIALACCOUNT_PROVIDERS["google"] = {
        "APPS": [{"client_id": GOOGLE_CLIENT_ID, "secret": GOOGLE_CLIENT_SECRET, "key": ""}],
        "SCOPE": ["profile", "email"],
        "AUTH_PARAMS": {"access_type": "online"},
    }

# django-otp: TOTP devices and single-use backup codes.
OTP_TOTP_ISSUER = os.environ.get("OTP_ISSUER", "Control Plane")
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# A destructive action accepts an OTP code verified this many seconds ago.
OTP_RECENT_SECONDS = env_int("OTP_RECENT_SECONDS", 300)

# django-axes: lock an (account, address) pair after AXES_FAILURE_LIMIT failures.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "accounts.security.login_identifier"
AXES_CLIENT_IP_CALLABLE = "accounts.security.client_ip"
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"

INVITATION_TTL_DAYS = env_int("INVITATION_TTL_DAYS", 7)
# Longest life of a staff-scoped API token (docs/SECURITY.md "Staff tokens").
STAFF_TOKEN_MAX_HOURS = env_int("STAFF_TOKEN_MAX_HOURS", 8)

# --- Billing (billing/) ---------------------------------------------------------
# Supplier details and policy (thresholds, grace period, pre-check, LUT) are edited
# in Django admin (Billing settings); only the schedule of the jobs lives here.
BILLING_CHARGE_INTERVAL_SECONDS = env_int("BILLING_CHARGE_INTERVAL_SECONDS", 600)
BILLING_INVOICE_INTERVAL_SECONDS = env_int("BILLING_INVOICE_INTERVAL_SECONDS", 3600)
# Noto Sans and Noto Sans Devanagari (Debian fonts-noto-core), embedded in GST PDFs.
BILLING_PDF_FONT_DIR = os.environ.get("BILLING_PDF_FONT_DIR", "/usr/share/fonts/truetype/noto")
BILLING_TRIAL_EXPIRY_INTERVAL_SECONDS = env_int("BILLING_TRIAL_EXPIRY_INTERVAL_SECONDS", 3600)
NOTIFY_RELAY_INTERVAL_SECONDS = float(os.environ.get("NOTIFY_RELAY_INTERVAL_SECONDS", "5"))
# --- VM metrics (docs/MONITORING.md) ---------------------------------------------
# Collection round length, retention of each tier, a round's time budget on the worker,
# and how many per-VM series /metrics exposes (0: none).
VM_METRICS = {
    "INTERVAL_SECONDS": env_int("METRICS_INTERVAL_SECONDS", 60),
    "RAW_HOURS": env_int("METRICS_RAW_HOURS", 48),
    "ROLLUP_5M_DAYS": env_int("METRICS_5M_DAYS", 30),
    "ROLLUP_1H_DAYS": env_int("METRICS_1H_DAYS", 365),
    "COLLECT_BUDGET_SECONDS": env_int("METRICS_COLLECT_BUDGET_SECONDS", 30),
    "PROMETHEUS_MAX_VMS": env_int("METRICS_PROMETHEUS_MAX_VMS", 500),
    "CAPACITY_WARN_PERCENT": env_int("METRICS_CAPACITY_WARN_PERCENT", 85),
}
# --- Security events (docs/SECURITY.md "Security event feed") --------------------
# Brute-force detection over the audit log's failed logins (audit/detection.py).
SECURITY_SCAN_INTERVAL_SECONDS = env_int("SECURITY_SCAN_INTERVAL_SECONDS", 60)
SECURITY_BRUTE_FORCE_WINDOW_SECONDS = env_int("SECURITY_BRUTE_FORCE_WINDOW_SECONDS", 900)
SECURITY_BRUTE_FORCE_THRESHOLDS = {
    "address": env_int("SECURITY_BRUTE_FORCE_PER_ADDRESS", 20),  # failures from one address
    "subnet": env_int("SECURITY_BRUTE_FORCE_PER_SUBNET", 50),  # failures from one /24 or /64
    "account_addresses": env_int("SECURITY_BRUTE_FORCE_ACCOUNT_ADDRESSES", 5),  # addresses failing one account
}
# Alert mail recipients; empty: every active staff user.
SECURITY_ALERT_EMAILS = env_list("SECURITY_ALERT_EMAILS")
# How often beat looks for backup schedules whose window is open (docs/OPERATIONS.md "Backups").
BACKUP_SCHEDULE_INTERVAL_SECONDS = env_int("BACKUP_SCHEDULE_INTERVAL_SECONDS", 60)
# --- Reverse DNS on PowerDNS Authoritative (docs/NETWORKING.md "Reverse DNS") ----
# Empty POWERDNS_API_URL: the feature is hidden (no PTR records, no PTR form or API).
POWERDNS_API_URL = os.environ.get("POWERDNS_API_URL", "")  # e.g. http://127.0.0.1:8081
POWERDNS_API_KEY = os.environ.get("POWERDNS_API_KEY", "")
POWERDNS_SERVER_ID = os.environ.get("POWERDNS_SERVER_ID", "localhost")
POWERDNS_TIMEOUT_SECONDS = float(os.environ.get("POWERDNS_TIMEOUT_SECONDS", "5"))
# NS names of reverse zones the control plane creates when missing (absolute names).
POWERDNS_NAMESERVERS = env_list("POWERDNS_NAMESERVERS")
REVERSE_DNS_TTL = env_int("REVERSE_DNS_TTL", 3600)
# A new VM's addresses get this PTR: {dashed} (203-0-113-5), {vm}, {id}, {project}; empty: none.
REVERSE_DNS_DEFAULT_PTR = os.environ.get("REVERSE_DNS_DEFAULT_PTR", "")
# A user's PTR name must resolve (A/AAAA) to the address; resolvers "ip" or "ip:port" (empty: the system's).
REVERSE_DNS_REQUIRE_FORWARD = env_bool("REVERSE_DNS_REQUIRE_FORWARD", True)
REVERSE_DNS_RESOLVERS = env_list("REVERSE_DNS_RESOLVERS")
REVERSE_DNS_RELAY_INTERVAL_SECONDS = float(os.environ.get("REVERSE_DNS_RELAY_INTERVAL_SECONDS", "30"))
EXTRA_BEAT_SCHEDULE = {
    "billing-charge-usage": {"task": "charge_usage", "schedule": float(BILLING_CHARGE_INTERVAL_SECONDS)},
    "billing-issue-invoices": {"task": "issue_monthly_invoices", "schedule": float(BILLING_INVOICE_INTERVAL_SECONDS)},
    "billing-expire-trials": {"task": "expire_trial_credit", "schedule": float(BILLING_TRIAL_EXPIRY_INTERVAL_SECONDS)},
    # Notifications and webhooks (docs/NOTIFICATIONS.md): the audit-event relay, and a daily purge.
    "notifications-relay": {"task": "relay_audit_events", "schedule": NOTIFY_RELAY_INTERVAL_SECONDS},
    "notifications-purge": {"task": "purge_notifications", "schedule": 24 * 3600.0},
    # VM metrics (docs/MONITORING.md): collection, rollups, alerts, expiry; transfer over-use billing.
    "metrics-collect": {"task": "collect_metrics_all", "schedule": float(VM_METRICS["INTERVAL_SECONDS"])},
    "metrics-rollup": {"task": "rollup_metrics", "schedule": 300.0},
    "metrics-alerts": {"task": "evaluate_metric_alerts", "schedule": float(VM_METRICS["INTERVAL_SECONDS"])},
    "metrics-expire": {"task": "expire_metrics", "schedule": 3600.0},
    "billing-charge-transfer": {"task": "charge_transfer", "schedule": 3600.0},
    "billing-charge-snapshot-storage": {"task": "charge_snapshot_storage", "schedule": 3600.0},
    "billing-charge-backup-storage": {"task": "charge_backup_storage", "schedule": 3600.0},
    # Brute-force detection over the audit log (docs/SECURITY.md).
    "security-brute-force-scan": {"task": "detect_brute_force", "schedule": float(SECURITY_SCAN_INTERVAL_SECONDS)},
    # Scheduled backups and their retention (docs/OPERATIONS.md "Backups"): one pass a minute.
    "backups-run-schedules": {"task": "run_backup_schedules", "schedule": float(BACKUP_SCHEDULE_INTERVAL_SECONDS)},
    # Reverse DNS (docs/NETWORKING.md): PTR changes not yet written to PowerDNS.
    "reverse-dns-relay": {"task": "relay_reverse_dns", "schedule": REVERSE_DNS_RELAY_INTERVAL_SECONDS},
}
# Razorpay (docs/BILLING.md "Getting paid"): keys are normally entered in admin (Payment settings,
# encrypted at rest); each variable set here wins over the stored value. RAZORPAY_API_URL points
# the SDK elsewhere (the tests' local fake); leave it empty in production.
RAZORPAY_KEY_ID = os.environ.get("RAZORPAY_KEY_ID", "")
RAZORPAY_KEY_SECRET = os.environ.get("RAZORPAY_KEY_SECRET", "")
RAZORPAY_WEBHOOK_SECRET = os.environ.get("RAZORPAY_WEBHOOK_SECRET", "")
RAZORPAY_API_URL = os.environ.get("RAZORPAY_API_URL", "")


# --- Portal (docs/PORTAL.md) -------------------------------------------------------
# The security page lists the user's sessions; each is noted at most this often.
SESSION_TOUCH_SECONDS = env_int("SESSION_TOUCH_SECONDS", 300)

# --- Logging (docs/DEPLOYMENT.md) --------------------------------------------
# LOG_FORMAT=json: one JSON object per line; every line carries the request id
# and operation id where known (controlplane/logging.py).
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "controlplane.logging.ContextFilter"}},
    "formatters": {
        "plain": {"()": "controlplane.logging.PlainFormatter"},
        "json": {"()": "controlplane.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- Metrics and the beat lock (docs/DEPLOYMENT.md) ---------------------------
# /metrics answers only requests with "Authorization: Bearer <METRICS_TOKEN>" when set.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# Production never derives the encryption key from SECRET_KEY, nor serves /metrics to anyone.
if PRODUCTION:
    for _required in ("FIELD_ENCRYPTION_KEY", "METRICS_TOKEN"):
        if not os.environ.get(_required, "").strip():
            raise ImproperlyConfigured(
                f"{_required} must be set when CONTROLPLANE_ENV=production (deploy/install.sh generates it)."
            )
# The latency histogram covers operations finished within this window.
METRICS_LATENCY_WINDOW_SECONDS = env_int("METRICS_LATENCY_WINDOW_SECONDS", 3600)
# The beat scheduler lock (controlplane/beat.py): Redis URL (default: the broker's) and timings.
BEAT_LOCK_URL = os.environ.get("BEAT_LOCK_URL", "")
BEAT_LOCK_KEY = os.environ.get("BEAT_LOCK_KEY", "controlplane:beat")
BEAT_LOCK_TTL_SECONDS = float(os.environ.get("BEAT_LOCK_TTL_SECONDS", "30"))

# --- Redis availability (issue 17; docs/DEPLOYMENT.md "Redis Sentinel") ---------
# CELERY_BROKER_URL, CACHE_URL and BEAT_LOCK_URL may be Sentinel URLs
# (sentinel://host:26379/DB;sentinel://host2:26379): the master is the one named here.
REDIS_SENTINEL_MASTER = os.environ.get("REDIS_SENTINEL_MASTER", "mymaster")
REDIS_SENTINEL_PASSWORD = os.environ.get("REDIS_SENTINEL_PASSWORD", "")
# The longest a web request waits on an unreachable cache per call before answering without it.
CACHE_REDIS_TIMEOUT_SECONDS = float(os.environ.get("CACHE_REDIS_TIMEOUT_SECONDS", "1"))

# --- Notifications and webhooks (docs/NOTIFICATIONS.md) ------------------------
# The operator's name on emails (subject prefix, header, signature) and webhook User-Agent.
OPERATOR_NAME = os.environ.get("OPERATOR_NAME", "Control Plane")
# Queue of email and webhook tasks: the control queue unless slow receivers should get their own workers.
NOTIFY_QUEUE = os.environ.get("NOTIFY_QUEUE", CELERY_DEFAULT_QUEUE)
# Finished webhook deliveries and read notifications are removed after this many days (daily job).
NOTIFY_RETENTION_DAYS = env_int("NOTIFY_RETENTION_DAYS", 90)
WEBHOOKS = {
    "TIMEOUT_SECONDS": float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "10")),
    # Attempts per delivery, with exponential backoff (base·2^(n-1), capped, with jitter) between them.
    "MAX_ATTEMPTS": env_int("WEBHOOK_MAX_ATTEMPTS", 10),
    "RETRY_BASE_SECONDS": float(os.environ.get("WEBHOOK_RETRY_BASE_SECONDS", "10")),
    "RETRY_MAX_SECONDS": float(os.environ.get("WEBHOOK_RETRY_MAX_SECONDS", "3600")),
    # A retry this soon is scheduled as a countdown task; a later one is re-published by the relay.
    "COUNTDOWN_MAX": min(300.0, CELERY_VISIBILITY_TIMEOUT / 2),
    "REPUBLISH_AFTER_SECONDS": env_int("WEBHOOK_REPUBLISH_AFTER_SECONDS", 30),
    # An endpoint is disabled (and its owner emailed) after this many failed attempts in a row.
    "DISABLE_AFTER_FAILURES": env_int("WEBHOOK_DISABLE_AFTER_FAILURES", 50),
    # Project webhooks may not call private/loopback addresses unless this is on (operators' global ones may).
    "ALLOW_PRIVATE_TARGETS": env_bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", False),
    "REQUIRE_HTTPS": env_bool("WEBHOOK_REQUIRE_HTTPS", PRODUCTION),
}

# Browser consoles (docs/CONSOLE.md): the console proxy (manage.py console_proxy) and its one-time tokens.
CONSOLE_PROXY_URL = os.environ.get("CONSOLE_PROXY_URL", "ws://127.0.0.1:6080/")  # a path: same host as the page
CONSOLE_PROXY_LISTEN = os.environ.get("CONSOLE_PROXY_LISTEN", "127.0.0.1:6080")
CONSOLE_TOKEN_TTL_SECONDS = max(1, min(env_int("CONSOLE_TOKEN_TTL_SECONDS", 30), 60))
CONSOLE_ALLOW_VIEWERS = env_bool("CONSOLE_ALLOW_VIEWERS", False)
CONSOLE_BIND_CLIENT_IP = env_bool("CONSOLE_BIND_CLIENT_IP", True)
CONSOLE_CONNECT_TIMEOUT_SECONDS = float(os.environ.get("CONSOLE_CONNECT_TIMEOUT_SECONDS", "10"))
