"""pytest settings. ``imbi.testing.pytest_plugin`` starts PostgreSQL and Redis and exports
``DATABASE_URL`` and ``REDIS_URL`` before this module is imported."""

from __future__ import annotations

import tempfile

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
# Tests only: services may point at loopback emulators (moto, the GitHub and Logz.io
# emulators) on random ports. Production and development settings never set this, and it is
# not read from the environment (plugins_core.serving.hosts, docs/security.md).
IMBI_TEST_NETWORK_HOSTS = ("127.0.0.1", "localhost")
# The emulators listen on loopback: the operator's opt-in for private addresses (the test
# session's own PostgreSQL and Redis stay refused to runners all the same).
IMBI_PLUGIN_ALLOW_PRIVATE_HOSTS = True

# The example plugin is trusted (its tests exercise the in-process runner); the hostile
# plugin and every other test distribution run isolated.
IMBI_TRUSTED_PLUGIN_DISTRIBUTIONS = [*IMBI_TRUSTED_PLUGIN_DISTRIBUTIONS, "imbi-plugin-example"]  # noqa: F405
IMBI_PLUGIN_TIMEOUT = 3.0
IMBI_PLUGIN_IMPORT_TIMEOUT = 2.0
# directory grants (operator_path_settings) inside the temp folder, where tests make them
IMBI_PLUGIN_PATH_ROOT = tempfile.gettempdir()
IMBI_PLUGIN_MEMORY_BYTES = 1024**3

# Development: every installed distribution may load unsigned (never modified).
IMBI_PLUGINS_UNSIGNED_ALLOWED = env.list("IMBI_PLUGINS_UNSIGNED_ALLOWED", default=["*"])

# In-process tests check the plugin registry generation only when they ask for it, so query
# counts stay exact (tests/plugins_core/distributions covers the check in real processes).
IMBI_PLUGIN_GENERATION_CHECK = 3600.0
