"""The Celery application (``celery -A imbi.celery worker|beat``), configured from Django
settings (``CELERY_*``); task modules (``<app>/tasks.py``) are discovered in every installed
app. A worker only ever runs production: without ``DJANGO_SETTINGS_MODULE`` this loads
``imbi.settings.production``. The beat schedule is ``CELERY_BEAT_SCHEDULE`` in the settings.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imbi.settings.production")

app = Celery("imbi")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
