"""The embedded default for ``make run``: SQLite, eager Celery, keys generated on first run.

Keys live in the git-ignored ``data/`` folder so a restart keeps the same database readable.
Any variable set in the environment still wins.
"""

from __future__ import annotations

import secrets

from cryptography.fernet import Fernet

from .base import *  # noqa: F403
from .base import DATA_DIR, env


def _key_file(name: str, make: str) -> str:
    """Read ``data/<name>``, creating it with ``make`` on first run (mode 0600)."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / name
    if not path.exists():
        path.write_text(make)
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="") or _key_file("secret.key", secrets.token_urlsafe(50))
IMBI_ENCRYPTION_KEYS = env.list("IMBI_ENCRYPTION_KEYS", default=[]) or [
    _key_file("encryption.key", Fernet.generate_key().decode())
]
# Development: every installed distribution may load unsigned (never modified).
IMBI_PLUGINS_UNSIGNED_ALLOWED = env.list("IMBI_PLUGINS_UNSIGNED_ALLOWED", default=["*"])
# Development: isolated plugins may reach loopback and private addresses (local mock servers);
# production's default is off (docs/operations.md).
IMBI_PLUGIN_ALLOW_PRIVATE_HOSTS = env.bool("IMBI_PLUGIN_ALLOW_PRIVATE_HOSTS", default=True)
