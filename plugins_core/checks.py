"""System checks: plugins that failed to load show up in ``manage.py check`` and at startup.

A failure is a warning (the service keeps running); with ``IMBI_PLUGINS_STRICT=1`` it is an
error, so CI and ``check --deploy`` fail on a broken plugin.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from . import registry


@checks.register("plugins")
def check_plugins(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    strict = bool(getattr(settings, "IMBI_PLUGINS_STRICT", False))
    level = checks.Error if strict else checks.Warning
    return [
        level(
            f"plugin entry point '{entry.name}' ({entry.distribution} {entry.version}) is "
            f"{entry.status.value}: {entry.reason}",
            hint="See `manage.py plugin list`; IMBI_PLUGINS_STRICT=1 makes this fatal.",
            id="plugins.E001" if strict else "plugins.W001",
        )
        for entry in registry.current().failed()
    ]
