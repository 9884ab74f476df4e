"""Enabling and disabling installed plugins: the state switch and its audit record.

Owns ``set_plugin_enabled`` (used by the admin registry page and the plugin admin's bulk
actions) and ``record_plugin_state``, the one audit record of a plugin's enabled state
(also written by the plugin admin's change form, which saves the row itself).
"""

from __future__ import annotations

from typing import Any

from imbi.core import audit
from imbi.core.models import AuditEvent
from plugins_core.models import Plugin


def record_plugin_state(plugin: Plugin, actor: Any) -> None:
    """Audit the plugin's current enabled state as a state change by ``actor``."""
    audit.record(
        AuditEvent.Action.PLUGIN_STATE,
        actor=actor,
        organization=plugin.organization,
        plugin_slug=plugin.slug,
        detail="enabled" if plugin.enabled else "disabled",
    )


def record_execution_mode(plugin: Plugin, previous: str, actor: Any) -> None:
    """Audit an admin's change of where the plugin runs (in-process or isolated)."""
    audit.record(
        AuditEvent.Action.PLUGIN_STATE,
        actor=actor,
        organization=plugin.organization,
        plugin_slug=plugin.slug,
        detail=f"execution mode: {previous or 'auto'} -> {plugin.execution_mode}",
    )


def set_plugin_enabled(plugin: Plugin, enabled: bool, actor: Any) -> bool:
    """Enable or disable an installed plugin; audited. Returns whether anything changed."""
    if plugin.enabled == enabled:
        return False
    plugin.enabled = enabled
    plugin.save(update_fields=["enabled"])
    record_plugin_state(plugin, actor)
    return True
