"""``manage.py check``, waiting for the registry first.

Django's own command, except that it first waits for the sandboxed imports of untrusted
plugins (each bounded by ``IMBI_PLUGIN_IMPORT_TIMEOUT``), so the ``plugins`` check reports
how every plugin ended. Other commands and ``runserver`` run the same check without waiting:
entries still loading are reported as info (``plugins.I001``).
"""

from __future__ import annotations

from typing import Any

from django.core.management.commands.check import Command as DjangoCheck


class Command(DjangoCheck):
    help = f"{DjangoCheck.help} Waits for untrusted plugins' sandboxed imports first."

    def handle(self, *app_labels: Any, **options: Any) -> None:
        from plugins_core import registry

        registry.settled()
        super().handle(*app_labels, **options)
