"""The Celery application (``celery -A imbi.celery worker|beat``), configured from Django
settings (``CELERY_*``); task modules (``<app>/tasks.py``) are discovered in every installed
app. A worker only ever runs production: without ``DJANGO_SETTINGS_MODULE`` this loads
``imbi.settings.production``. The beat schedule is ``CELERY_BEAT_SCHEDULE`` in the settings.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_init

from imbi.core import metrics

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imbi.settings.production")

app = Celery("imbi")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Task outcomes counted for /metrics (imbi.core.metrics, a worker process's own counters).
metrics.connect_celery()


@worker_init.connect  # type: ignore[untyped-decorator]
def _check_keys(**kwargs: object) -> None:
    """A worker whose encryption keys cannot read the key canary stops with one line, exit 3
    (imbi.core.keycheck), before it takes a task."""
    from imbi.core.keycheck import check_at_start

    try:
        check_at_start()
    except SystemExit as exc:  # Celery would log a signal handler's exit and carry on
        os._exit(int(exc.code or 3))
    finally:
        from django.db import connections

        connections.close_all()
