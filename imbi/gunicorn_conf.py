"""The gunicorn configuration: the one source of truth for how the web process runs.

Used by the Dockerfile's ``CMD`` and by docker/compose.yaml (``gunicorn -c
python:imbi.gunicorn_conf``). Tunables come from the environment:

- ``IMBI_BIND_ADDRESS`` (``127.0.0.1``): the address to listen on. Loopback by default, so on
  a host install only the local TLS proxy reaches the app; the image sets ``0.0.0.0`` (the
  container's port is published to the host's loopback only, see docker/compose.yaml).
- ``PORT`` (8000): the port to listen on.
- ``WEB_CONCURRENCY`` (3): worker processes.
- ``GUNICORN_TIMEOUT`` (30): seconds a request may take before its worker is replaced.

``on_starting`` loads the settings and the apps in the master before any worker is forked:
a refused production start (missing keys, no Redis, a broken plugin under
``IMBI_PLUGINS_STRICT``) exits the master with the one-line reason and a non-zero status,
instead of every worker failing and being restarted forever.
"""

from __future__ import annotations

import os
import sys
from typing import Any

wsgi_app = "imbi.wsgi:application"
bind = [f"{os.environ.get('IMBI_BIND_ADDRESS', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"]
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
accesslog = "-"
errorlog = "-"
# Django alone decides whether a request came over HTTPS (SECURE_PROXY_SSL_HEADER, believed
# only from IMBI_TRUSTED_PROXIES by imbi.core.proxy): gunicorn derives no scheme from headers.
secure_scheme_headers: dict[str, str] = {}
forwarded_allow_ips = ""
# Gunicorn's control socket defaults to a file under $HOME, shared by every gunicorn of the
# user; nothing here uses it.
control_socket_disable = True


def on_starting(server: Any) -> None:
    """Validate the configuration in the master: exit with the reason if it is refused."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imbi.settings.production")
    try:
        import django
        from django.db import connections

        django.setup()
        from imbi.core import keycheck

        keycheck.check_at_start()  # wrong encryption keys: one line, exit 3
        connections.close_all()  # nothing opened here may be shared with forked workers
    except SystemExit as exc:  # the settings' own one-line refusal
        sys.exit(exc.code if exc.code not in (None, 0) else 1)
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0]
        sys.exit(f"imbi: refusing to start: {type(exc).__name__}: {first_line}")
