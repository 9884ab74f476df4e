"""ASGI entry point. Like ``imbi.wsgi``, it defaults to ``imbi.settings.production``."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imbi.settings.production")
application = get_asgi_application()
