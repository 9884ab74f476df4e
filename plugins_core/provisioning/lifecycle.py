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


def approve_permissions(plugin: Plugin, actor: Any) -> bool:
    """Accept what the installed version's manifest asks for; audited. False if unchanged."""
    from plugins_core import registry

    entry = registry.current().get(plugin.handler)
    if entry is None or entry.manifest is None:
        return False
    wanted = entry.manifest.permissions.to_dict()
    if plugin.approved_permissions == wanted:
        return False
    plugin.approved_permissions = wanted
    plugin.save(update_fields=["approved_permissions"])
    hosts = ", ".join(wanted["network_hosts"]) or "none"
    storage = "yes" if wanted["storage"] else "no"
    projects = "yes" if wanted.get("project_metadata") else "no"
    paths = ", ".join(wanted.get("operator_path_settings") or [])
    audit.record(
        AuditEvent.Action.PLUGIN_STATE,
        actor=actor,
        organization=plugin.organization,
        plugin_slug=plugin.slug,
        detail=(
            f"permissions approved: network {hosts}; storage {storage}; project metadata {projects}"
            + (f"; read files in settings {paths}" if paths else "")
        )[:255],
    )
    return True


def set_plugin_enabled(plugin: Plugin, enabled: bool, actor: Any) -> bool:
    """Enable or disable an installed plugin; audited. Returns whether anything changed."""
    if plugin.enabled == enabled:
        return False
    plugin.enabled = enabled
    plugin.save(update_fields=["enabled"])
    record_plugin_state(plugin, actor)
    return True
