"""Permission approvals: what an installed distribution may reach, accepted by an administrator.

A plugin row's ``approved_permissions`` is set at install to what the version installed then
declares (a first install's permissions are approved by installing it). A later version that
asks for more answers 503 ``plugin_permissions_pending`` until an administrator approves it
here. An approval *adds* what the installed version declares to what was approved before,
so every permission granted once stays granted: a rollback to the earlier version, or a
version that declares the earlier hosts again, needs no new approval.

The one service behind the admin's "approve permissions" action, ``GET/POST
/api/plugin-distributions/{name}/approvals`` and ``manage.py plugin approve
NAME[==VERSION]``. Every approval that changes something is audited per plugin row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imbi_plugin_sdk import PluginManifest
from packaging.utils import canonicalize_name

from imbi.core import audit
from imbi.core.models import AuditEvent
from plugins_core import registry
from plugins_core.models import Plugin
from plugins_core.models.plugins import unapproved_permissions
from plugins_core.serving.permissions import approved_described

_LISTS = ("network_hosts", "operator_host_settings", "operator_path_settings")
_FLAGS = ("storage", "project_metadata")


class ApprovalError(Exception):
    """A refused approval; nothing was changed. ``detail`` is one line."""

    def __init__(self, code: str, detail: str, http_status: int) -> None:
        super().__init__(detail)
        self.code, self.detail, self.http_status = code, detail, http_status


@dataclass(frozen=True, slots=True)
class Distribution:
    """An installed distribution's loaded entry points (name -> manifest) and version."""

    name: str
    version: str
    manifests: dict[str, PluginManifest]


def merged(approved: Any, manifest: PluginManifest) -> dict[str, Any]:
    """What was approved before plus what ``manifest`` declares (nothing granted is dropped)."""
    before = approved if isinstance(approved, dict) else {}
    wanted = manifest.permissions.to_dict()
    out: dict[str, Any] = {}
    for key in _LISTS:
        values = list(before.get(key) or [])
        values += [v for v in wanted.get(key) or [] if v not in values]
        if values or key == "network_hosts":
            out[key] = values
    for key in _FLAGS:
        if before.get(key) is True or wanted.get(key) is True or key == "storage":
            out[key] = before.get(key) is True or wanted.get(key) is True
    return out


def distribution(name: str) -> Distribution:
    """The installed distribution ``name`` (any spelling); 404 ``not_installed`` if none."""
    wanted = canonicalize_name(str(name)[:200])
    entries = [
        e
        for e in registry.current().entries.values()
        if canonicalize_name(e.distribution) == wanted and e.manifest is not None
    ]
    if not entries:
        raise ApprovalError("not_installed", f"{str(name)[:100]} is not installed", 404)
    return Distribution(
        name=wanted,
        version=entries[0].version,
        manifests={e.name: e.manifest for e in entries if e.manifest is not None},
    )


def _rows(dist: Distribution) -> list[Plugin]:
    return list(
        Plugin.objects.filter(handler__in=dist.manifests)
        .select_related("organization")
        .order_by("organization__slug", "slug")
    )


def state(name: str) -> dict[str, Any]:
    """What the installed version declares, and per plugin row what is approved and pending."""
    dist = distribution(name)
    declared: list[str] = []
    for manifest in dist.manifests.values():
        declared += [w for w in manifest.permissions.describe() if w not in declared]
    plugins = []
    pending: list[str] = []
    for row in _rows(dist):
        extra = unapproved_permissions(row, dist.manifests[row.handler])
        pending += [w for w in extra if w not in pending]
        plugins.append(
            {
                "organization": row.organization.slug,
                "plugin": row.slug,
                "entry_point": row.handler,
                "approved": approved_described(row),
                "pending": extra,
            }
        )
    return {
        "name": dist.name,
        "version": dist.version,
        "declared": declared,
        "pending": pending,
        "plugins": plugins,
    }


def approve_plugin(plugin: Plugin, actor: Any) -> bool:
    """Approve what the plugin's installed version declares, keeping what was approved
    before; audited. False when there was nothing to approve."""
    entry = registry.current().get(plugin.handler)
    if entry is None or entry.manifest is None:
        return False
    manifest = entry.manifest
    if not unapproved_permissions(plugin, manifest) and plugin.approved_permissions is not None:
        return False
    wanted = merged(plugin.approved_permissions, manifest)
    plugin.approved_permissions = wanted
    plugin.save(update_fields=["approved_permissions"])
    hosts = ", ".join(wanted["network_hosts"]) or "none"
    storage = "yes" if wanted.get("storage") else "no"
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


def approve(name: str, version: str | None, actor: Any) -> dict[str, Any]:
    """Approve what the installed version of distribution ``name`` declares, for every plugin
    row that uses it. ``version`` (optional) must be the installed one (409
    ``version_mismatch``): approve what you reviewed, not whatever is installed now."""
    dist = distribution(name)
    if version and version != dist.version:
        raise ApprovalError(
            "version_mismatch",
            f"{dist.name} {dist.version} is installed, not {str(version)[:100]}",
            409,
        )
    changed = [row.slug for row in _rows(dist) if approve_plugin(row, actor)]
    return {**state(dist.name), "approved_plugins": changed}


def parse_requirement(text: str) -> tuple[str, str | None]:
    """``NAME`` or ``NAME==VERSION`` (the CLI's argument)."""
    name, sep, version = text.partition("==")
    if not name.strip() or (sep and not version.strip()):
        raise ApprovalError("invalid_requirement", "expected NAME or NAME==VERSION", 400)
    return name.strip(), (version.strip() or None)
