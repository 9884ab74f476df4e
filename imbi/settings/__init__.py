"""Settings modules.

- ``imbi.settings.base``: everything read from the environment (12-factor).
- ``imbi.settings.dev``: the embedded default used by ``make run`` (SQLite, eager Celery,
  generated keys in ``data/``).
- ``imbi.settings.production``: refuses to start without keys and a secret key.
- ``imbi.settings.test``: the pytest settings; the harness supplies PostgreSQL and Redis.
"""
