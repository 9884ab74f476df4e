"""System checks: plugins that failed to load show up in ``manage.py check`` and at startup.

A failure is a warning (the service keeps running); with ``IMBI_PLUGINS_STRICT=1`` it is an
error, so CI and ``check --deploy`` fail on a broken plugin. The check itself never waits for
the sandboxed imports of untrusted plugins (``runserver`` and ``migrate`` run it too): entries
still loading are an info message. ``manage.py check`` (``management/commands/check.py``) and
``manage.py plugin list`` wait first and show how they ended.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from plugins_core import registry


@checks.register("plugins")
def check_plugins(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    strict = bool(getattr(settings, "IMBI_PLUGINS_STRICT", False))
    level = checks.Error if strict else checks.Warning
    snapshot = registry.current()
    names = sorted(entry.name for entry in snapshot.loading())
    loading = (
        [
            checks.Info(
                f"{len(names)} plugin entry point(s) still loading in sandboxed runners: "
                + ", ".join(names),
                hint="`manage.py check` and `manage.py plugin list` wait for them.",
                id="plugins.I001",
            )
        ]
        if names
        else []
    )
    return loading + [
        level(
            f"plugin entry point '{entry.name}' ({entry.distribution} {entry.version}) is "
            f"{entry.status.value}: {entry.reason}",
            hint="See `manage.py plugin list`; IMBI_PLUGINS_STRICT=1 makes this fatal.",
            id="plugins.E001" if strict else "plugins.W001",
        )
        for entry in snapshot.failed()
        if entry.status is not registry.Status.LOADING
    ]


@checks.register("plugins", deploy=True)
def check_sandbox(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``check --deploy``: an untrusted plugin is installed and this host cannot sandbox it
    (``isolation.capabilities``); the same words as ``/healthz``, the admin, the API and
    ``plugin list``."""
    from plugins_core.isolation import capabilities

    return [
        checks.Error(
            f"plugin entry point '{entry.name}' ({entry.distribution} {entry.version}) "
            f"{capabilities.status_label(entry)}",
            hint="docs/operations.md, 'What the host needs', lists each sandbox layer.",
            id="plugins.E002",
        )
        for entry in registry.current().entries.values()
        if capabilities.entry_refusal(entry)
    ]
