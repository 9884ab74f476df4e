"""The Imbi integrations platform: Django project, settings and the core domain.

The Celery app lives in ``imbi.celery``; workers load it with ``celery -A imbi.celery``.
Web processes do not import it until a task module does.
"""
