"""Approved permissions: what an installed version asks for beyond what an admin approved.

Part of step 4 of resolution (``check_entry`` answers 503 ``plugin_permissions_pending``
while ``unapproved_permissions`` is not empty); the admin pages and the API show
``permissions_state``. ``unapproved_permissions`` itself lives with the rows
(``plugins_core.models.plugins``) so the sandbox (``isolation.host``) can use it too.
"""

from __future__ import annotations

from imbi_plugin_sdk import PluginManifest

from plugins_core.models import Plugin as PluginRow
from plugins_core.models.plugins import unapproved_permissions


def approved_described(plugin: PluginRow) -> list[str]:
    """The plugin's approved permissions in the words of ``Permissions.describe``."""
    granted = plugin.approved_permissions if isinstance(plugin.approved_permissions, dict) else {}
    words = [f"network {host}" for host in granted.get("network_hosts") or []]
    if granted.get("storage") is True:
        words.append("storage")
    if granted.get("project_metadata") is True:
        words.append("project metadata")
    words.extend(
        f"read files in setting {name}" for name in granted.get("operator_path_settings") or []
    )
    return words


def permissions_state(plugin: PluginRow, manifest: PluginManifest | None) -> dict[str, list[str]]:
    """What the installed version declares, what an admin approved, and what is pending."""
    return {
        "declared": manifest.permissions.describe() if manifest is not None else [],
        "approved": approved_described(plugin),
        "pending": unapproved_permissions(plugin, manifest) if manifest is not None else [],
    }
