"""pytest settings. ``imbi.testing.pytest_plugin`` starts PostgreSQL and Redis and exports
``DATABASE_URL`` and ``REDIS_URL`` before this module is imported."""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import env

SECRET_KEY = "test-secret-key-not-for-production-" + "x" * 30
IMBI_ENCRYPTION_KEYS = env.list(
    "IMBI_ENCRYPTION_KEYS",
    default=["mSNzGj0qWfBfYQz-VrNqKx9Dg1P5w9oAqz0qkCbP3x8="],
)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEBUG = False
ALLOWED_HOSTS = ["*"]
CELERY_TASK_ALWAYS_EAGER = True
# Development: every installed distribution may load unsigned (never modified).
IMBI_PLUGINS_UNSIGNED_ALLOWED = env.list("IMBI_PLUGINS_UNSIGNED_ALLOWED", default=["*"])
