"""Production settings: refuse to start, with a one-line reason, without keys and a secret key.

``python manage.py check --deploy`` is clean under these settings.
"""

from __future__ import annotations

import sys

from cryptography.fernet import Fernet

from .base import *  # noqa: F403
from .base import DATABASES, IMBI_ENCRYPTION_KEYS, SECRET_KEY, env


def _refuse(reason: str) -> None:
    sys.exit(f"imbi: refusing to start: {reason}")


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

DEBUG = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
