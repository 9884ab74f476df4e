#!/usr/bin/env python
"""Django's command-line utility for the Imbi integrations platform.

Without ``DJANGO_SETTINGS_MODULE`` it uses the embedded developer default
(``imbi.settings.dev``: SQLite, eager Celery, keys generated into ``data/``) and says so on
stderr, so nobody runs production commands against it by accident. Servers (WSGI, ASGI,
Celery) default to ``imbi.settings.production`` instead.
"""

import os
import sys

DEV_DEFAULT = "imbi.settings.dev"


def main() -> None:
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        os.environ["DJANGO_SETTINGS_MODULE"] = DEV_DEFAULT
        print(
            f"manage.py: DJANGO_SETTINGS_MODULE is not set; using {DEV_DEFAULT} "
            "(the embedded developer default; production needs imbi.settings.production)",
            file=sys.stderr,
        )
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
