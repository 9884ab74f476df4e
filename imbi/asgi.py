"""ASGI entry point. Like ``imbi.wsgi``, it defaults to ``imbi.settings.production``."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imbi.settings.production")
application = get_asgi_application()

# Wrong encryption keys: one line, exit 3 (imbi.core.keycheck).
from imbi.core.keycheck import check_at_start  # noqa: E402

check_at_start()
