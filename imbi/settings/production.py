"""Production settings: refuse to start, with a one-line reason, on anything unsafe.

Refused: no or a weak ``SECRET_KEY``; no or an invalid ``IMBI_ENCRYPTION_KEYS``; SQLite
without ``IMBI_ALLOW_SQLITE``; no ``REDIS_URL`` without ``IMBI_SINGLE_NODE`` (several nodes
without Redis never see each other's cache invalidations, and Celery would run eagerly);
``CSRF_TRUSTED_ORIGINS`` entries without a scheme.

TLS is terminated by a reverse proxy that sets ``X-Forwarded-Proto`` (see
docs/operations.md); the redirect and HSTS are configurable. Static files are served by the
app itself (whitenoise, compressed and hashed by ``collectstatic``).
``python manage.py check --deploy`` is clean under these settings.
"""

from __future__ import annotations

from cryptography.fernet import Fernet

from imbi.refusal import refuse

from .base import *  # noqa: F403
from .base import CSRF_TRUSTED_ORIGINS, DATABASES, IMBI_ENCRYPTION_KEYS, MIDDLEWARE, SECRET_KEY, env
from .base import REDIS_URL as _REDIS_URL

# gunicorn's "worker failed to boot" status: a master started without imbi.gunicorn_conf
# halts on it instead of restarting the worker forever. Any other caller sees a failure.
REFUSED_EXIT_STATUS = 3


def _refuse(reason: str) -> None:
    refuse(reason)  # one line on stderr, exit 3 (only one worker of a bare gunicorn says so)


if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
    _refuse("SECRET_KEY must be set to a random value of at least 50 characters")
if not IMBI_ENCRYPTION_KEYS:
    _refuse("IMBI_ENCRYPTION_KEYS must list at least one Fernet key (the first one encrypts)")
for _position, _key in enumerate(IMBI_ENCRYPTION_KEYS, start=1):
    try:
        Fernet(_key)
    except (ValueError, TypeError):
        _refuse(f"IMBI_ENCRYPTION_KEYS entry {_position} is not a valid Fernet key")
if DATABASES["default"]["ENGINE"].endswith("sqlite3") and not env.bool(
    "IMBI_ALLOW_SQLITE", default=False
):
    _refuse("DATABASE_URL must point at PostgreSQL (SQLite is for the embedded default only)")
IMBI_SINGLE_NODE = env.bool("IMBI_SINGLE_NODE", default=False)
if not _REDIS_URL and not IMBI_SINGLE_NODE:
    _refuse(
        "REDIS_URL must be set (cache invalidation and Celery need Redis when several nodes "
        "run); set IMBI_SINGLE_NODE=1 to run one node without Redis"
    )
for _origin in CSRF_TRUSTED_ORIGINS:
    if "://" not in _origin:
        _refuse(f"CSRF_TRUSTED_ORIGINS entry '{_origin}' needs a scheme, e.g. https://{_origin}")

DEBUG = False

# TLS ends at the reverse proxy, which must *overwrite* X-Forwarded-Proto on every request.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# The container health check talks plain HTTP to the app itself: never redirect it.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^livez$", r"^readyz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Static files: served by the app (whitenoise), compressed and with hashed names.
_security = MIDDLEWARE.index("django.middleware.security.SecurityMiddleware")
MIDDLEWARE = [
    *MIDDLEWARE[: _security + 1],
    "whitenoise.middleware.WhiteNoiseMiddleware",
    *MIDDLEWARE[_security + 1 :],
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
