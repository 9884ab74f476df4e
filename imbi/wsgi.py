"""WSGI entry point (gunicorn ``imbi.wsgi:application``, see ``imbi.gunicorn_conf``).

A server only ever runs production: without ``DJANGO_SETTINGS_MODULE`` this loads
``imbi.settings.production``, which refuses to start without its keys.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imbi.settings.production")
application = get_wsgi_application()

# A worker whose encryption keys cannot read the platform's key canary exits 3 with one line
# (gunicorn then halts: "Worker failed to boot"), like a missing key (imbi.core.keycheck).
from imbi.core.keycheck import check_at_start  # noqa: E402

check_at_start()

# Each worker converges to the desired plugin distributions before it serves (building a
# missing environment under a per-environment file lock, so workers never build it twice).
# The node's Celery worker reports the node's state (plugins_core.distributions.control).
from plugins_core.distributions.runtime import converge_on_start  # noqa: E402

converge_on_start(report=False)
