"""Settings shared by every environment, read from environment variables.

Variables: ``DATABASE_URL``, ``REDIS_URL``, ``IMBI_ENCRYPTION_KEYS`` (comma-separated list;
the first key encrypts, all keys decrypt), ``SECRET_KEY``, ``ALLOWED_HOSTS``, ``DEBUG``,
``IMBI_PLUGINS_STRICT``, ``IMBI_PLUGIN_TIMEOUT``, ``IMBI_PLUGIN_MAX_REPLY_BYTES``,
``IMBI_PLUGINS_SITE``, ``IMBI_PLUGINS_STATE_DIR``, ``IMBI_PLUGINS_VERIFIED_ONLY``,
``IMBI_PLUGINS_UNSIGNED_ALLOWED``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import environ

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
# A plugin reply larger than this (as JSON) is refused as plugin_failed (HTTP 502).
IMBI_PLUGIN_MAX_REPLY_BYTES = env.int("IMBI_PLUGIN_MAX_REPLY_BYTES", default=8 * 1024 * 1024)

# Supply chain (docs/security.md, "Supply chain"). Plugins installed from a signed index land
# in IMBI_PLUGINS_SITE (appended to sys.path; .pth files there are never executed); their
# signed install records live in IMBI_PLUGINS_STATE_DIR. Keep both writable by the platform's
# deploy user only.
IMBI_PLUGINS_SITE = env.str("IMBI_PLUGINS_SITE", default=str(DATA_DIR / "plugins" / "site"))
IMBI_PLUGINS_STATE_DIR = env.str(
    "IMBI_PLUGINS_STATE_DIR", default=str(DATA_DIR / "plugins" / "state")
)
# Install only plugins whose publisher certificate is marked verified (organizations can
# also opt in on their own, see PluginPolicy).
IMBI_PLUGINS_VERIFIED_ONLY = env.bool("IMBI_PLUGINS_VERIFIED_ONLY", default=False)
# Distributions that may load without a signed install record (still checked against their
# own RECORD: never modified). The first-party catalog ships from this repository.
IMBI_PLUGINS_UNSIGNED_ALLOWED: list[str] = env.list(
    "IMBI_PLUGINS_UNSIGNED_ALLOWED",
    default=["imbi-plugin-aws", "imbi-plugin-github", "imbi-plugin-local", "imbi-plugin-logzio"],
)
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
    "imbi.core",
    "plugins_core",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

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
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL: str = env.str("REDIS_URL", default="")

CACHES: dict[str, dict[str, Any]]
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "imbi",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: on Redis when configured, otherwise tasks run eagerly in the calling process.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

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
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
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
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
