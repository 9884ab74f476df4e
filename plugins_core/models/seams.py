"""What the rows need from the layers above them, handed in at start-up.

``models`` imports nothing above it (the import contract in pyproject.toml), yet two rules of
its rows need the loaded plugins: a plugin is installed with the permissions its handler's
manifest declares now (``Plugin.save``), and a service's settings may name only hosts that
every plugin on it declares (``ThirdPartyService.clean``, ``Plugin.clean``; the check is
``plugins_core.serving.hosts.service_host_errors``). ``PluginsCoreConfig.ready`` connects
both (``connect``); until then they raise ``ImproperlyConfigured`` rather than skip a check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

__all__ = ["connect", "declared_permissions", "service_host_errors"]

DeclaredPermissions = Callable[[str], "dict[str, Any] | None"]
"""Entry-point name → the permissions its loaded manifest declares (``None``: not loaded)."""

ServiceHostErrors = Callable[[Any, list[Any]], Mapping[str, str]]
"""(service, plugin rows being added) → the settings naming an undeclared host, by key."""


def _not_connected(*args: Any) -> Any:
    raise ImproperlyConfigured(
        "plugins_core.models.seams is not connected (PluginsCoreConfig.ready connects it)"
    )


_declared_permissions: DeclaredPermissions = _not_connected
_service_host_errors: ServiceHostErrors = _not_connected


def connect(
    *, declared_permissions: DeclaredPermissions, service_host_errors: ServiceHostErrors
) -> None:
    """Hand in the two functions of the layers above (``PluginsCoreConfig.ready``)."""
    global _declared_permissions, _service_host_errors
    _declared_permissions = declared_permissions
    _service_host_errors = service_host_errors


def declared_permissions(handler: str) -> dict[str, Any] | None:
    """What the loaded manifest of ``handler`` declares (``Permissions.to_dict``), if loaded."""
    return _declared_permissions(handler)


def service_host_errors(service: Any, extra: list[Any]) -> dict[str, str]:
    """``serving.hosts.service_host_errors(service, extra=extra)`` for a ``ThirdPartyService``
    and the ``Plugin`` rows being added to it (typed ``Any``: this module imports no model)."""
    return dict(_service_host_errors(service, extra))
