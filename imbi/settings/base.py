"""Settings shared by every environment, read from environment variables.

Variables: ``DATABASE_URL``, ``REDIS_URL``, ``IMBI_ENCRYPTION_KEYS`` (comma-separated list;
the first key encrypts, all keys decrypt), ``SECRET_KEY``, ``ALLOWED_HOSTS``, ``DEBUG``,
``IMBI_PLUGINS_STRICT``, ``IMBI_PLUGIN_TIMEOUT``, ``IMBI_PLUGIN_MAX_REPLY_BYTES``; throttling:
``IMBI_LOGIN_FAILURE_LIMIT``, ``IMBI_TOKEN_FAILURE_LIMIT``, ``IMBI_LOGIN_LOCKOUT_MINUTES``,
``IMBI_TRUSTED_PROXY_COUNT``; request limits: ``IMBI_MAX_REQUEST_BYTES``; supply chain:
``IMBI_PLUGINS_DEPENDENCY_INDEX``, ``IMBI_PLUGINS_VERIFIED_ONLY``,
``IMBI_PLUGINS_UNSIGNED_ALLOWED``.

Every variable read here or in the other settings modules is documented in
docs/operations.md (a test compares the two lists, and with docker/env.example).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = Path(environ.Env().str("IMBI_DATA_DIR", default=str(BASE_DIR / "data")))

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# The first key encrypts; every key decrypts (rotation). A plain comma string is a list.
IMBI_ENCRYPTION_KEYS: list[str] = env.list("IMBI_ENCRYPTION_KEYS", default=[])
IMBI_PLUGINS_STRICT = env.bool("IMBI_PLUGINS_STRICT", default=False)
IMBI_PLUGIN_TIMEOUT = env.float("IMBI_PLUGIN_TIMEOUT", default=10.0)
# The isolated plugin runtime (docs/security.md, "Plugin isolation").
IMBI_TRUSTED_PLUGIN_DISTRIBUTIONS: list[str] = env.list(
    "IMBI_TRUSTED_PLUGIN_DISTRIBUTIONS",
    default=[
        "imbi-plugin-aws",
        "imbi-plugin-github",
        "imbi-plugin-logzio",
        "imbi-plugin-local",
        "imbi-plugin-oidc",
    ],
)
# Trust follows the bytes: a trusted distribution runs in-process only when its installed
# files are those this lock records (written at image build by `manage.py plugin trust
# --record`; plugins_core/registry/trust.py). Empty: trust by name (development only).
IMBI_TRUSTED_PLUGIN_LOCK: str = env.str(
    "IMBI_TRUSTED_PLUGIN_LOCK", default=str(BASE_DIR / "trusted-plugins.lock")
)
IMBI_PLUGIN_IMPORT_TIMEOUT = env.float("IMBI_PLUGIN_IMPORT_TIMEOUT", default=10.0)
IMBI_PLUGIN_CPU_SECONDS = env.int("IMBI_PLUGIN_CPU_SECONDS", default=60)
IMBI_PLUGIN_MEMORY_BYTES = env.int("IMBI_PLUGIN_MEMORY_BYTES", default=2 * 1024**3)
IMBI_PLUGIN_OPEN_FILES = env.int("IMBI_PLUGIN_OPEN_FILES", default=256)
IMBI_PLUGIN_PROCESSES = env.int("IMBI_PLUGIN_PROCESSES", default=32)
IMBI_PLUGIN_RUNNERS_IDLE = env.int("IMBI_PLUGIN_RUNNERS_IDLE", default=2)
# A runner's temp folder in total: past it the runner is killed (502 plugin_crashed). After a
# call, a runner holding more resident memory or temp files than these is retired, not pooled.
IMBI_PLUGIN_TMP_BYTES = env.int("IMBI_PLUGIN_TMP_BYTES", default=256 * 1024**2)
IMBI_PLUGIN_RUNNER_RSS_BYTES = env.int("IMBI_PLUGIN_RUNNER_RSS_BYTES", default=256 * 1024**2)
IMBI_PLUGIN_RUNNER_TMP_RETAIN_BYTES = env.int(
    "IMBI_PLUGIN_RUNNER_TMP_RETAIN_BYTES", default=16 * 1024**2
)
# Isolated calls in flight at once on one node, per installed plugin and per organization
# (plugins_core/isolation/concurrency.py); more answer 503 plugin_busy at once. 0: no limit.
IMBI_PLUGIN_CONCURRENCY_PER_PLUGIN = env.int("IMBI_PLUGIN_CONCURRENCY_PER_PLUGIN", default=2)
IMBI_PLUGIN_CONCURRENCY_PER_ORGANIZATION = env.int(
    "IMBI_PLUGIN_CONCURRENCY_PER_ORGANIZATION", default=2
)
IMBI_PLUGIN_BREAKER_FAILURES = env.int("IMBI_PLUGIN_BREAKER_FAILURES", default=5)
IMBI_PLUGIN_BREAKER_RESET = env.float("IMBI_PLUGIN_BREAKER_RESET", default=30.0)
# A plugin reply larger than this (as JSON) is refused as plugin_failed (HTTP 502).
IMBI_PLUGIN_MAX_REPLY_BYTES = env.int("IMBI_PLUGIN_MAX_REPLY_BYTES", default=8 * 1024 * 1024)
# Every host directory granted to an isolated plugin (permissions.operator_path_settings)
# must lie inside this one when set (plugins_core/isolation/paths.py).
IMBI_PLUGIN_PATH_ROOT: str = env.str("IMBI_PLUGIN_PATH_ROOT", default="")
# Whether isolated plugins may connect to loopback and private addresses (RFC 1918, unique
# local, carrier-grade NAT) at all, declared or not: the platform operator's choice, never an
# organization admin's. The platform's own database, Redis and ports stay refused even then
# (plugins_core/isolation/egress.py).
IMBI_PLUGIN_ALLOW_PRIVATE_HOSTS = env.bool("IMBI_PLUGIN_ALLOW_PRIVATE_HOSTS", default=False)

# Supply chain (docs/security.md, "Supply chain"). Plugins installed from a signed index go
# into the desired state like any runtime-installed distribution (IMBI_PLUGIN_ROOT, one
# environment per version). Their dependencies are the wheels the signed entry pins by
# SHA-256, fetched once by the installing node from this PEP 503 index URL or local folder of
# wheels; every other node installs them from the database.
IMBI_PLUGINS_DEPENDENCY_INDEX = env.str(
    "IMBI_PLUGINS_DEPENDENCY_INDEX", default="https://pypi.org/simple/"
)
# Install only plugins whose publisher certificate is marked verified (organizations can
# also opt in on their own, see PluginPolicy).
IMBI_PLUGINS_VERIFIED_ONLY = env.bool("IMBI_PLUGINS_VERIFIED_ONLY", default=False)
# Distributions that may load without a signed install record (still checked against their
# own RECORD: never modified). The first-party catalog ships from this repository.
IMBI_PLUGINS_UNSIGNED_ALLOWED: list[str] = env.list(
    "IMBI_PLUGINS_UNSIGNED_ALLOWED",
    default=[
        "imbi-plugin-aws",
        "imbi-plugin-github",
        "imbi-plugin-local",
        "imbi-plugin-logzio",
        "imbi-plugin-oidc",
    ],
)
# Fetching indexes and artifacts (plugins_core/supply/fetching.py): a total deadline per
# download, a minimum average rate after a grace period, artifact hosts besides the index's
# own, and whether an index may live at a loopback/link-local/metadata address (off by
# default: a redirect or a record there would reach this node's internal services).
IMBI_PLUGIN_FETCH_DEADLINE = env.float("IMBI_PLUGIN_FETCH_DEADLINE", default=120.0)
IMBI_PLUGIN_FETCH_MIN_RATE = env.float("IMBI_PLUGIN_FETCH_MIN_RATE", default=16 * 1024.0)
IMBI_PLUGIN_FETCH_RATE_GRACE = env.float("IMBI_PLUGIN_FETCH_RATE_GRACE", default=10.0)
IMBI_PLUGIN_ARTIFACT_HOSTS: list[str] = env.list("IMBI_PLUGIN_ARTIFACT_HOSTS", default=[])
IMBI_PLUGIN_INDEX_ALLOW_INTERNAL = env.bool("IMBI_PLUGIN_INDEX_ALLOW_INTERNAL", default=False)
# This platform's own blocklist, beside the indexes': [{"plugin", "below", "reason"}].
IMBI_PLUGINS_BLOCKLIST: list[dict[str, str]] = []

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "imbi.core",
    "plugins_core",
]

MIDDLEWARE = [
    # First, so every answer carries the policy, those of the middlewares below included
    # (error pages: 404/500 under DEBUG, 413); imbi.core.middleware.
    "imbi.core.middleware.ContentSecurityPolicyMiddleware",
    # X-Forwarded-* only from IMBI_TRUSTED_PROXIES (imbi.core.proxy)
    "imbi.core.proxy.TrustedProxyMiddleware",
    "imbi.core.limits.SafeDebugPagesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "imbi.core.limits.RequestSizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    "imbi.core.middleware.UnreadableDataMiddleware",
    # Serve the current plugin registry generation (plugins_core.distributions.runtime).
    "plugins_core.distributions.runtime.GenerationMiddleware",
]

# --- Content-Security-Policy (django-csp; docs/security.md) ---
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- request limits (imbi.core.limits) ---
IMBI_MAX_REQUEST_BYTES = env.int("IMBI_MAX_REQUEST_BYTES", default=1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = IMBI_MAX_REQUEST_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = IMBI_MAX_REQUEST_BYTES

# --- throttling (imbi.core.throttle; docs/operations.md) ---
AUTHENTICATION_BACKENDS = [
    "imbi.core.throttle.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# axes' cache handler (Redis when REDIS_URL is set), on process memory while Redis is down
AXES_HANDLER = "imbi.core.throttle.ResilientAxesHandler"
AXES_FAILURE_LIMIT = env.int("IMBI_LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("IMBI_LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_CALLABLE = "imbi.core.throttle.lockout_response"
AXES_RESET_ON_SUCCESS = True
AXES_IPWARE_PROXY_COUNT = env.int("IMBI_TRUSTED_PROXY_COUNT", default=0) or None
# Peers whose X-Forwarded-* headers are believed (addresses or networks); every other peer's
# are deleted before anything reads them (imbi.core.proxy).
IMBI_TRUSTED_PROXIES: list[str] = env.list("IMBI_TRUSTED_PROXIES", default=["127.0.0.1", "::1"])
AXES_VERBOSE = False
AXES_ENABLE_ADMIN = False  # the cache handler keeps no rows; lockouts are lifted with axes_reset_*
IMBI_TOKEN_FAILURE_LIMIT = env.int("IMBI_TOKEN_FAILURE_LIMIT", default=20)

ROOT_URLCONF = "imbi.urls"
WSGI_APPLICATION = "imbi.wsgi.application"
ASGI_APPLICATION = "imbi.asgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{DATA_DIR / 'imbi.sqlite3'}"
    ),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
# A database that accepts no connection (down, frozen, black-holed) costs a request at most
# this long before it answers 503 database_unavailable (imbi.api.problems).
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = (
    True  # a pooled connection broken by an outage is replaced
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL: str = env.str("REDIS_URL", default="")
# Plugin circuit breakers shared by every worker and node (in memory when empty).
IMBI_PLUGIN_BREAKER_REDIS_URL: str = env.str("IMBI_PLUGIN_BREAKER_REDIS_URL", default=REDIS_URL)

# A frozen Redis costs a process one timeout of IMBI_REDIS_TIMEOUT seconds, then every cache
# call fails fast for IMBI_REDIS_RETRY_SECONDS before the next try (imbi.core.cache).
IMBI_REDIS_TIMEOUT = env.float("IMBI_REDIS_TIMEOUT", default=0.5)
IMBI_REDIS_RETRY_SECONDS = env.float("IMBI_REDIS_RETRY_SECONDS", default=5.0)

CACHES: dict[str, dict[str, Any]]
if REDIS_URL:
    # Reads degrade to a miss while Redis is down; invalidations raise so the caller can fall
    # back to the database (see imbi.core.cache and plugins_core.serving.caching).
    CACHES = {
        "default": {
            "BACKEND": "imbi.core.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "imbi",
            "OPTIONS": {
                "socket_connect_timeout": IMBI_REDIS_TIMEOUT,
                "socket_timeout": IMBI_REDIS_TIMEOUT,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # One process (the embedded default, or production with IMBI_SINGLE_NODE): lockout counts
    # in its own memory are complete, so axes' warning about a per-process cache does not apply.
    SILENCED_SYSTEM_CHECKS = ["axes.W001"]

# Celery: on Redis when configured, otherwise tasks run eagerly in the calling process.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Every task is idempotent (plugins_core/tasks.py): a message is acknowledged only after its
# task ran, and a task whose worker process was killed (WorkerLostError) is sent again after
# its default_retry_delay (5 s), at most max_retries times (plugins_core.tasks.RETRY,
# docs/operations.md "Periodic tasks"). An unacknowledged message of a worker that died
# whole goes back to the queue after the broker's visibility timeout.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True  # if the retry cannot be sent: requeue the message
CELERY_TASK_RETRY_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # a worker holds one unacknowledged message per child
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# Periodic work (connection tests of every enabled plugin, plugins_core.serving.health), run by the
# `beat` process (docker/compose.yaml); never in the embedded default.
IMBI_CONNECTION_CHECK_INTERVAL = env.float("IMBI_CONNECTION_CHECK_INTERVAL", default=300.0)
CELERY_BEAT_SCHEDULE = {
    "check-connections": {
        "task": "plugins_core.tasks.check_connections",
        "schedule": IMBI_CONNECTION_CHECK_INTERVAL,
    },
    "reconcile-plugin-nodes": {  # every node reconciles and prunes its plugin environments
        "task": "plugins_core.tasks.nudge_nodes",
        "schedule": env.float("IMBI_PLUGIN_RECONCILE_INTERVAL", default=300.0),
    },
}

# Runtime-installed plugin distributions (docs/operations.md, "Plugin distributions").
IMBI_NODE_ID: str = env.str("IMBI_NODE_ID", default="")  # default: the host name
# The bearer token a Prometheus scraper sends to /metrics; unset, /metrics answers 404.
IMBI_METRICS_TOKEN: str = env.str("IMBI_METRICS_TOKEN", default="")
IMBI_PLUGIN_ROOT: str = env.str("IMBI_PLUGIN_ROOT", default=str(DATA_DIR / "plugins"))
IMBI_PLUGIN_GENERATION_CHECK = env.float("IMBI_PLUGIN_GENERATION_CHECK", default=0.5)
IMBI_PLUGIN_GENERATION_TTL = env.float("IMBI_PLUGIN_GENERATION_TTL", default=5.0)
IMBI_PLUGIN_BROADCAST = env.bool("IMBI_PLUGIN_BROADCAST", default=True)
IMBI_PLUGIN_DRAIN_SECONDS = env.float("IMBI_PLUGIN_DRAIN_SECONDS", default=120.0)
IMBI_WORKER_HEADER = env.bool("IMBI_WORKER_HEADER", default=False)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
LOGIN_URL = "/admin/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "imbi.api.authentication.ThrottledTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "imbi.api.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "imbi.api.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "imbi.api.problems.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Imbi integrations API",
    "DESCRIPTION": "Normalized Configuration and Logs tab data served by plugins.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and ReDoc from the installed drf-spectacular-sidecar: no CDN, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No deep links: Swagger UI then nests a link inside each operation's toggle button
    # (axe-core's nested-interactive); ReDoc's status, code and type colours at 4.5:1.
    "SWAGGER_UI_SETTINGS": {"deepLinking": False},
    "REDOC_UI_SETTINGS": {
        "theme": {
            "colors": {
                "text": {"secondary": "#3c4353"},
                "responses": {
                    "success": {"color": "#0f5c19", "tabTextColor": "#8fd19e"},
                    "error": {"color": "#a3120f", "tabTextColor": "#ffa4a2"},
                    "redirect": {"color": "#7a4a00", "tabTextColor": "#ffcc80"},
                    "info": {"color": "#1f4fa8", "tabTextColor": "#a8cfff"},
                },
            },
            "typography": {"code": {"color": "#a3120f"}},
            "schema": {"typeNameColor": "#2b3140", "typeTitleColor": "#2b3140"},
        }
    },
    # <id:...> (imbi.core.converters): a row id, 1 to 2**63 - 1.
    "PATH_CONVERTER_OVERRIDES": {
        "id": {"type": "integer", "minimum": 1, "maximum": 9223372036854775807}
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "imbi.api.schema.problem_responses",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
