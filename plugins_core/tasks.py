"""Celery tasks of the plugin framework.

``check_connections`` is the periodic connection check (scheduled by
``CELERY_BEAT_SCHEDULE``; eager in the embedded default): it tests every enabled plugin with
its stored options and credentials and records the results (``plugins_core.health``), so
badges reflect a rotated or revoked credential without anyone pressing a button.
"""

from __future__ import annotations

from imbi.celery import app

from . import health


@app.task(name="plugins_core.tasks.check_connections")  # type: ignore[untyped-decorator]
def check_connections() -> dict[str, int]:
    """Test every enabled plugin; returns the counts of ``ok`` and ``failed``."""
    return health.check_all()
