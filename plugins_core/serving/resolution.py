"""Resolution: which plugin serves a project's tab, with which options and credentials.

Read top-down, this is section 4 of Imbi's ADR 0008 (the seed design):

1. ``candidates``: merge the project type's and the project's bindings by (tab, plugin);
   the project's binding wins. One query returning only ids, slugs and default flags,
   whatever the number of bindings.
2. ``select``: ``?source=`` if given, else the default binding (a project default beats a
   type default), else the single candidate; several and no default is ambiguous (400),
   none is 404.
3. ``load_binding``: one query for the chosen plugin, its service, its credentials (as
   ciphertext) and both bindings' options and templates.
4. ``plan`` / ``resolve``: check the plugin is enabled and its handler loaded and compatible
   (else 503 with the reason; ``plugin_loading`` with Retry-After while an untrusted handler
   is still being imported in its sandboxed runner), merge options (plugin, type binding,
   project binding), expand the search template, and decrypt the credentials
   (``credentials_for``, the only place they are decrypted). ``cached_plan`` memoizes
   steps 1-4 per process (ADR 0003).

This module is step 4 and the top-level algorithm; the other steps live beside it:

- ``selection``: steps 1-3 (``candidates``, ``select``, ``load_binding``) and
  ``effective_bindings``, which loads every merged binding for listings (the tabs endpoint);
- ``templates``: search-template validation and expansion, and ``preview_search_template``
  for the search-template preview endpoints;
- ``permissions``: what an installed version asks for beyond its approved permissions;
- ``credentials``: ``credentials_for``;
- ``errors``: ``ResolutionError`` and its subclasses, each carrying a stable ``code`` and an
  HTTP status.

Every public name of those modules is re-exported here (``__all__``), so callers import
from ``plugins_core.serving.resolution`` alone. Those modules never import this one.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from imbi_plugin_sdk import Credentials, OptionValidationError, PluginContext, PluginManifest

from imbi.core.models import Project
from plugins_core import registry
from plugins_core.models import Plugin as PluginRow
from plugins_core.models.plugins import unapproved_permissions
from plugins_core.serving.credentials import credentials_for
from plugins_core.serving.errors import (
    AmbiguousSource,
    CredentialsMissing,
    CredentialsUnreadable,
    NothingBound,
    PluginDisabled,
    PluginIncompatible,
    PluginLoading,
    PluginMisconfigured,
    PluginPermissionsPending,
    PluginUnavailable,
    ResolutionError,
    SourceNotBound,
)
from plugins_core.serving.hosts import host_errors
from plugins_core.serving.permissions import approved_described, permissions_state
from plugins_core.serving.projects import DatabaseProjectMetadata
from plugins_core.serving.selection import (
    _TOKEN,
    Candidate,
    EffectiveBinding,
    candidates,
    effective_bindings,
    load_binding,
    select,
)
from plugins_core.serving.templates import (
    _PLACEHOLDER as _PLACEHOLDER,  # plugins_core.serving.confinement imports it from here
)
from plugins_core.serving.templates import (
    TEMPLATE_VARIABLES,
    TemplateError,
    expand_search_template,
    preview_search_template,
    validate_search_template,
)

# --- 3. resolve ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resolved:
    """Everything needed to call the plugin; ``credentials`` never appear in repr."""

    binding: EffectiveBinding
    entry: registry.Entry
    manifest: PluginManifest
    context: PluginContext
    credentials: Credentials = field(repr=False)

    @property
    def plugin(self) -> PluginRow:
        return self.binding.plugin


def check_entry(plugin: PluginRow, snapshot: registry.Snapshot) -> registry.Entry:
    """The plugin's registry entry, or the 503 that explains why it cannot run."""
    if not plugin.enabled:
        raise PluginDisabled(f"plugin '{plugin.slug}' is disabled by an administrator")
    entry = snapshot.get(plugin.handler)
    if entry is None:
        raise PluginUnavailable(
            f"plugin '{plugin.slug}': handler '{plugin.handler}' is not installed"
        )
    if entry.status is registry.Status.LOADING:
        raise PluginLoading(
            f"plugin '{plugin.slug}' is still loading: {entry.reason}; try again shortly",
            retry_after=registry.retry_after(),
        )
    if entry.status is registry.Status.INCOMPATIBLE:
        raise PluginIncompatible(f"plugin '{plugin.slug}': {entry.reason}")
    if not entry.ok or entry.manifest is None or (entry.handler is None and not entry.isolated):
        raise PluginUnavailable(f"plugin '{plugin.slug}' cannot load: {entry.reason}")
    extra = unapproved_permissions(plugin, entry.manifest)
    if extra:
        raise PluginPermissionsPending(
            f"plugin '{plugin.slug}' {entry.version} asks for permissions an admin has not "
            f"approved: {', '.join(extra)}"
        )
    return entry


def entry_status(plugin: PluginRow, snapshot: registry.Snapshot) -> tuple[str, str]:
    """``("ok", "")``, or the problem code and reason that stop ``plugin`` from serving."""
    try:
        check_entry(plugin, snapshot)
    except ResolutionError as exc:
        return exc.code, exc.detail
    return "ok", ""


def merged_options(
    manifest: PluginManifest, plugin: PluginRow, binding_options: Mapping[str, Any]
) -> dict[str, object]:
    try:
        return manifest.validate_options({**plugin.options, **binding_options})
    except OptionValidationError as exc:
        raise PluginMisconfigured(
            f"plugin '{plugin.slug}' options are invalid: {', '.join(sorted(exc.errors))}",
            errors=exc.errors,
        ) from None


@dataclass(frozen=True, slots=True)
class Plan:
    """What resolution decides for (project, tab, source), minus per-request state."""

    binding: EffectiveBinding
    entry: registry.Entry
    manifest: PluginManifest
    options: Mapping[str, object]
    search_template: str


_plans: OrderedDict[tuple[Any, ...], Plan] = OrderedDict()
_plans_lock = threading.Lock()
PLAN_CACHE_SIZE = 2048


def plan(project: Project, tab: str, source: str | None, snapshot: registry.Snapshot) -> Plan:
    """Choose and load the binding, check its handler, merge options, expand the template."""
    binding = load_binding(project, select(candidates(project, tab), tab, source))
    entry = check_entry(binding.plugin, snapshot)
    manifest = entry.manifest
    assert manifest is not None  # checked by check_entry
    # Saves check this already; a row written around them, or a manifest narrowed by an
    # upgrade, still never sends the credentials to an undeclared host.
    hosts_refused = host_errors(binding.plugin.service.settings or {}, [manifest])
    if hosts_refused:
        raise PluginMisconfigured(
            f"service '{binding.plugin.service.slug}' settings name a host plugin "
            f"'{binding.plugin.slug}' does not declare: {', '.join(sorted(hosts_refused))}",
            errors=hosts_refused,
        )
    try:
        template = expand_search_template(binding.search_template, project, tab)
    except ValueError as exc:
        raise PluginMisconfigured(f"search template: {exc}") from None
    return Plan(
        binding,
        entry,
        manifest,
        merged_options(manifest, binding.plugin, binding.options),
        template,
    )


def cached_plan(
    project: Project, tab: str, source: str | None, snapshot: registry.Snapshot
) -> Plan:
    """``plan()`` memoized per process, keyed by the organization's ``config_version`` and the
    registry generation; ``project`` must be freshly loaded for this request."""
    key = (project.pk, tab, source or "", project.organization.config_version, snapshot.generation)
    with _plans_lock:
        found = _plans.get(key)
        if found is not None:
            _plans.move_to_end(key)
            return found
    made = plan(project, tab, source, snapshot)
    with _plans_lock:
        _plans[key] = made
        while len(_plans) > PLAN_CACHE_SIZE:
            _plans.popitem(last=False)
    return made


def resolve(
    project: Project,
    tab: str,
    source: str | None = None,
    *,
    snapshot: registry.Snapshot | None = None,
    timeout: float = 10.0,
    storage_factory: Any = None,
    cached: bool = False,
) -> Resolved:
    """Everything needed to call the plugin serving ``tab``. With ``cached=True`` the plan is
    reused while nothing in the organization changed (see ``plugins_core.serving.invalidation``)."""
    snapshot = snapshot or registry.current()
    chosen = (cached_plan if cached else plan)(project, tab, source, snapshot)
    storage = (
        storage_factory(chosen.binding.plugin.pk)
        if storage_factory and chosen.manifest.permissions.storage
        else None
    )
    context = PluginContext(
        organization=project.organization.slug,
        project_id=project.pk,
        project_slug=project.slug,
        project_type=project.project_type.slug,
        tab=tab,
        options=chosen.options,
        search_template=chosen.search_template,
        timeout=timeout,
        logger=logging.getLogger(f"imbi.plugins.{chosen.manifest.slug}"),
        storage=storage,
        service_settings=dict(chosen.binding.plugin.service.settings),
        projects=(
            DatabaseProjectMetadata(project.organization_id, project.pk)
            if chosen.manifest.permissions.project_metadata
            else None
        ),
    )
    return Resolved(
        binding=chosen.binding,
        entry=chosen.entry,
        manifest=chosen.manifest,
        context=context,
        credentials=credentials_for(chosen.manifest, chosen.binding),
    )


def resolve_plugin(
    plugin: PluginRow,
    *,
    snapshot: registry.Snapshot | None = None,
    timeout: float = 10.0,
    storage_factory: Any = None,
) -> Resolved:
    """An installed plugin outside any project (its own options, its service's credentials),
    for calls that need no project, such as the periodic connection test."""
    snapshot = snapshot or registry.current()
    row: Any = (
        PluginRow.objects.select_related("service", "organization")
        .defer("service__icon")
        .annotate(token=_TOKEN)
        .get(pk=plugin.pk)
    )
    entry = check_entry(row, snapshot)
    manifest = entry.manifest
    assert manifest is not None  # checked by check_entry
    binding = EffectiveBinding(
        plugin=row,
        tab=manifest.plugin_type.value,
        default=False,
        project_default=False,
        search_template="",
        options={},
        scope="plugin",
        credentials_token=row.token,
    )
    wants_storage = storage_factory is not None and manifest.permissions.storage
    context = PluginContext(
        organization=row.organization.slug,
        tab=binding.tab,
        options=merged_options(manifest, row, {}),
        timeout=timeout,
        logger=logging.getLogger(f"imbi.plugins.{manifest.slug}"),
        storage=storage_factory(row.pk) if wants_storage else None,
        service_settings=dict(row.service.settings),
        projects=(
            DatabaseProjectMetadata(row.organization_id)
            if manifest.permissions.project_metadata
            else None
        ),
    )
    return Resolved(
        binding=binding,
        entry=entry,
        manifest=manifest,
        context=context,
        credentials=credentials_for(manifest, binding),
    )


def manifest_for(
    plugin: PluginRow, snapshot: registry.Snapshot | None = None
) -> PluginManifest | None:
    """The manifest of an installed plugin's handler, if it is loaded."""
    entry = (snapshot or registry.current()).get(plugin.handler)
    return entry.manifest if entry is not None else None


__all__ = [
    "PLAN_CACHE_SIZE",
    "TEMPLATE_VARIABLES",
    "AmbiguousSource",
    "Candidate",
    "CredentialsMissing",
    "CredentialsUnreadable",
    "EffectiveBinding",
    "NothingBound",
    "Plan",
    "PluginDisabled",
    "PluginIncompatible",
    "PluginLoading",
    "PluginMisconfigured",
    "PluginPermissionsPending",
    "PluginUnavailable",
    "ResolutionError",
    "Resolved",
    "SourceNotBound",
    "TemplateError",
    "approved_described",
    "cached_plan",
    "candidates",
    "check_entry",
    "credentials_for",
    "effective_bindings",
    "entry_status",
    "expand_search_template",
    "load_binding",
    "manifest_for",
    "merged_options",
    "permissions_state",
    "plan",
    "preview_search_template",
    "resolve",
    "resolve_plugin",
    "select",
    "unapproved_permissions",
    "validate_search_template",
]
