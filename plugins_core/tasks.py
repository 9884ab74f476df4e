"""Celery tasks of the plugin framework (discovered by ``imbi.celery``).

``check_connections`` is the periodic connection test (scheduled by ``CELERY_BEAT_SCHEDULE``
every ``IMBI_CONNECTION_CHECK_INTERVAL`` seconds, run by the ``beat`` process in
docker/compose.yaml; eager in the embedded default). ``plugins_core.health.check_all`` tests
every enabled plugin with its stored options and credentials through the runner, the same path
a tab request takes, records each result (so badges reflect a rotated or revoked credential
without anyone pressing a button) and logs one line per plugin, scrubbed of secrets.
"""

from __future__ import annotations

from imbi.celery import app

from . import health


@app.task(name="plugins_core.tasks.check_connections", ignore_result=True)  # type: ignore[untyped-decorator]
def check_connections() -> dict[str, int]:
    """Test every enabled plugin's connection; record and log each outcome. Returns counts."""
    return health.check_all()
