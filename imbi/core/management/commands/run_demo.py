"""``make run``: seed the demo, then serve it, ending the output with the URL and logins.

A ``runserver`` whose start-up banner is the demo's: the seed summary, the URL and the two
logins (passwords only on the run that created them), so they are the last lines printed.
Usage: ``manage.py run_demo [addr:port]`` (``make run PORT=8001``).
"""

from __future__ import annotations

import io
import os
from typing import Any

from django.contrib.staticfiles.management.commands.runserver import Command as RunServer
from django.core.management import call_command


class Command(RunServer):
    help = "Seed the demo data and serve it; prints the URL and the logins last."

    def inner_run(self, *args: Any, **options: Any) -> None:
        # Seed once, in the serving process (the autoreloader's child), not in the parent.
        if not getattr(self, "_seeded", False):
            buffer = io.StringIO()
            where = f"http://{getattr(self, 'addr', '127.0.0.1')}:{getattr(self, 'port', '8000')}/"
            call_command("seed_demo", url=where, stdout=buffer)
            self._banner = buffer.getvalue().rstrip("\n")
            self._seeded = True
        super().inner_run(*args, **{**options, "skip_checks": True})

    def on_bind(self, server_port: Any) -> None:
        # Written, not read: Django's own "development server" warning is replaced below.
        os.environ.update(DJANGO_RUNSERVER_HIDE_WARNING="true")
        self.stdout.write("Development server (stop with CONTROL-C). Demo:")
        self.stdout.write(self._banner)
        self.stdout.flush()
