"""WSGI entry point (gunicorn ``imbi.wsgi:application``, see ``imbi.gunicorn_conf``).

A server only ever runs production: without ``DJANGO_SETTINGS_MODULE`` this loads
``imbi.settings.production``, which refuses to start without its keys.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imbi.settings.production")
application = get_wsgi_application()
