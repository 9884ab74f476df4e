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

``effective_bindings`` loads every merged binding for listings (the tabs endpoint);
``preview_search_template`` answers the search-template preview endpoints.
Errors are ``ResolutionError`` subclasses carrying a stable ``code`` and an HTTP status.
"""

from __future__ import annotations

import logging
import re
import string
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from django.db.models import (
    ExpressionWrapper,
    F,
    JSONField,
    OuterRef,
    Subquery,
    TextField,
    Value,
)
from imbi_plugin_sdk import Credentials, OptionValidationError, PluginContext, PluginManifest

from imbi.core import crypto
from imbi.core.models import Project
from plugins_core import registry
from plugins_core.models import Plugin as PluginRow
from plugins_core.models import ProjectPlugin, ProjectTypePlugin
from plugins_core.models.plugins import unapproved_permissions  # moved to models (issue 18)
from plugins_core.serving.hosts import host_errors
from plugins_core.serving.projects import DatabaseProjectMetadata

logger = logging.getLogger(__name__)

TEMPLATE_VARIABLES: Mapping[str, str] = {
    "org": "organization slug",
    "project": "project slug",
    "project_id": "project id",
    "project_type": "project type slug",
    "tab": "tab name",
}


class ResolutionError(Exception):
    """A tab request that cannot be served; ``code`` is stable, ``detail`` names no secret."""

    code = "resolution_error"
    http_status = 400

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NothingBound(ResolutionError):
    code, http_status = "no_plugin_bound", 404


class SourceNotBound(ResolutionError):
    code, http_status = "source_not_bound", 404


class AmbiguousSource(ResolutionError):
    code, http_status = "ambiguous_source", 400


class PluginDisabled(ResolutionError):
    code, http_status = "plugin_disabled", 503


class PluginUnavailable(ResolutionError):
    code, http_status = "plugin_unavailable", 503


class PluginLoading(ResolutionError):
    """The handler is still being imported in its sandboxed runner (the registry's
    background inspection): ask again after ``retry_after`` seconds."""

    code, http_status = "plugin_loading", 503

    def __init__(self, detail: str, *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class PluginPermissionsPending(ResolutionError):
    """The installed version asks for permissions an admin has not approved yet."""

    code, http_status = "plugin_permissions_pending", 503


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


class PluginIncompatible(ResolutionError):
    code, http_status = "plugin_incompatible", 503


class PluginMisconfigured(ResolutionError):
    code, http_status = "plugin_misconfigured", 503


class CredentialsMissing(ResolutionError):
    code, http_status = "credentials_missing", 503


class CredentialsUnreadable(ResolutionError):
    code, http_status = "credentials_unreadable", 503


class TemplateError(ValueError):
    """A search template uses a variable outside ``TEMPLATE_VARIABLES`` or bad syntax."""


# --- search templates ---------------------------------------------------------------

_PLACEHOLDER = re.compile(
    r"\$(?:\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*)|(?P<other>.?))"
)


def validate_search_template(template: str) -> None:
    """Raise ``TemplateError`` naming any unknown variable (called when a binding is saved)."""
    for match in _PLACEHOLDER.finditer(template):
        name = match.group("braced") or match.group("named")
        if name is None:
            if match.group("other") == "$":
                continue  # "$$" is a literal dollar sign
            raise TemplateError("use ${name} for variables and $$ for a literal '$'")
        if name not in TEMPLATE_VARIABLES:
            allowed = ", ".join(f"${{{v}}}" for v in TEMPLATE_VARIABLES)
            raise TemplateError(f"unknown variable ${{{name}}}; allowed: {allowed}")


def expand_search_template(template: str, project: Project, tab: str) -> str:
    validate_search_template(template)
    return string.Template(template).substitute(
        org=project.organization.slug,
        project=project.slug,
        project_id=str(project.pk),
        project_type=project.project_type.slug,
        tab=tab,
    )


def preview_search_template(template: str, project: Project, tab: str) -> dict[str, Any]:
    """The template expanded for ``project`` as a JSON-able answer (``ok`` plus ``value`` or
    ``error``); used by the admin wizard's and the project page's preview endpoints."""
    try:
        return {"ok": True, "value": expand_search_template(template, project, tab)}
    except ValueError as exc:
        return {"ok": False, "error": str(exc)}


# --- 1. merge ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """A plugin bound to a tab, after merging: just enough to choose one (the hot path)."""

    plugin_id: int
    slug: str
    tab: str
    default: bool
    project_default: bool
    scope: str  # "project" or "project_type"


@dataclass(frozen=True, slots=True)
class EffectiveBinding:
    """One plugin serving one tab of a project, fully loaded, after merging."""

    plugin: PluginRow
    tab: str
    default: bool
    project_default: bool
    search_template: str
    options: Mapping[str, Any]
    scope: str  # "project" or "project_type" ("plugin" outside any project)
    credentials_token: str | None = field(default=None, repr=False)

    @property
    def slug(self) -> str:
        return self.plugin.slug


# The service's credentials ride along as ciphertext (decrypted only in credentials_for), so
# loading a binding never decrypts anything it does not need.
_TOKEN = ExpressionWrapper(F("service__application__credentials"), output_field=TextField())


def _scoped(project: Project, tab: str | None) -> tuple[Any, Any]:
    type_rows: Any = ProjectTypePlugin.objects.filter(project_type_id=project.project_type_id)
    project_rows: Any = ProjectPlugin.objects.filter(project_id=project.pk)
    if tab is not None:
        type_rows, project_rows = type_rows.filter(tab=tab), project_rows.filter(tab=tab)
    return type_rows, project_rows


def candidates(project: Project, tab: str | None = None) -> list[Candidate]:
    """Merge the type's and the project's bindings by (tab, plugin): one query, no JSON."""
    type_rows, project_rows = _scoped(project, tab)
    columns = ("plugin_id", "plugin__slug", "tab", "default", "scope")
    rows = (
        type_rows.annotate(scope=Value("project_type"))
        .values_list(*columns)
        .union(project_rows.annotate(scope=Value("project")).values_list(*columns), all=True)
    )
    merged: dict[tuple[str, int], Candidate] = {}
    for plugin_id, slug, row_tab, default, scope in sorted(rows, key=lambda r: r[4] == "project"):
        inherited = merged.get((row_tab, plugin_id))
        project_row = scope == "project"
        merged[(row_tab, plugin_id)] = Candidate(
            plugin_id=plugin_id,
            slug=slug,
            tab=row_tab,
            default=default or bool(inherited and inherited.default),
            project_default=default and project_row,
            scope=scope,
        )
    return sorted(merged.values(), key=lambda c: (c.tab, c.slug))


def _binding_columns(model: Any, scope_filter: dict[str, Any], name: str) -> dict[str, Any]:
    rows = model.objects.filter(
        plugin_id=OuterRef("pk"), tab=OuterRef("plugin_type"), **scope_filter
    )
    return {
        f"{name}_options": Subquery(rows.values("options")[:1], output_field=JSONField()),
        f"{name}_template": Subquery(rows.values("search_template")[:1]),
    }


def load_binding(project: Project, chosen: Candidate) -> EffectiveBinding:
    """The chosen plugin with its service, credentials token and both bindings: one query."""
    plugin: Any = (
        PluginRow.objects.select_related("service")
        .defer("service__icon")
        .annotate(
            token=_TOKEN,
            **_binding_columns(
                ProjectTypePlugin, {"project_type_id": project.project_type_id}, "type"
            ),
            **_binding_columns(ProjectPlugin, {"project_id": project.pk}, "project"),
        )
        .get(pk=chosen.plugin_id)
    )
    return EffectiveBinding(
        plugin=plugin,
        tab=chosen.tab,
        default=chosen.default,
        project_default=chosen.project_default,
        search_template=plugin.project_template or plugin.type_template or "",
        options={**(plugin.type_options or {}), **(plugin.project_options or {})},
        scope=chosen.scope,
        credentials_token=plugin.token,
    )


def effective_bindings(project: Project, tab: str | None = None) -> list[EffectiveBinding]:
    """Every merged binding with its plugin and service, for listings (the tabs endpoint).

    Options and search templates are left empty here: only ``load_binding`` merges them,
    for the one binding a request resolves to."""
    chosen = candidates(project, tab)
    plugins = {
        p.pk: p
        # The connection and the stored credential names feed the badges
        # (plugins_core.serving.health).
        for p in PluginRow.objects.select_related("service", "connection")
        .annotate(credential_names=F("service__application__names"))
        .defer("service__icon")
        .filter(pk__in=[c.plugin_id for c in chosen])
    }
    return [
        EffectiveBinding(
            plugin=plugins[c.plugin_id],
            tab=c.tab,
            default=c.default,
            project_default=c.project_default,
            search_template="",
            options={},
            scope=c.scope,
        )
        for c in chosen
    ]


# --- 2. select -----------------------------------------------------------------------


class _Choosable(Protocol):
    @property
    def slug(self) -> str: ...
    @property
    def tab(self) -> str: ...
    @property
    def default(self) -> bool: ...
    @property
    def project_default(self) -> bool: ...


T = TypeVar("T", bound=_Choosable)


def select(bound: list[T], tab: str, source: str | None) -> T:
    choices = [b for b in bound if b.tab == tab]
    slugs = [b.slug for b in choices]
    if source:
        for binding in choices:
            if binding.slug == source:
                return binding
        raise SourceNotBound(
            f"no plugin '{source}' serves the {tab} tab of this project", available=slugs
        )
    if not choices:
        raise NothingBound(f"no plugin is bound to the {tab} tab of this project")
    defaults = [b for b in choices if b.project_default] or [b for b in choices if b.default]
    if len(defaults) == 1:
        return defaults[0]
    if len(choices) == 1:
        return choices[0]
    raise AmbiguousSource(
        f"{len(choices)} plugins serve the {tab} tab and none is the default; "
        "choose one with ?source=",
        candidates=slugs,
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


def credentials_for(manifest: PluginManifest, binding: EffectiveBinding) -> Credentials:
    """Decrypt the service's shared credentials. The only place credentials are decrypted.

    A plugin that declares no credentials gets none, and nothing is decrypted for it."""
    plugin = binding.plugin
    stored: dict[str, str] = {}
    if binding.credentials_token and manifest.credentials:
        try:
            stored = dict(
                crypto.decrypt_json(
                    binding.credentials_token, where=f"credentials of {plugin.service.slug}"
                )
            )
        except crypto.DecryptionError as exc:
            logger.error(
                "credentials of service %s cannot be decrypted: %s", plugin.service.slug, exc
            )
            raise CredentialsUnreadable(
                f"the credentials of service '{plugin.service.slug}' cannot be decrypted with "
                "the configured keys; an operator must add the key that encrypted them to "
                "IMBI_ENCRYPTION_KEYS"
            ) from None
    missing = [f.name for f in manifest.credentials if f.required and not stored.get(f.name)]
    if missing:
        raise CredentialsMissing(
            f"service '{plugin.service.slug}' has no {', '.join(missing)} credentials; "
            "an administrator must add them",
            missing=missing,
        )
    known = {f.name for f in manifest.credentials}
    return Credentials({k: v for k, v in stored.items() if k in known})


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
    "TEMPLATE_VARIABLES",
    "AmbiguousSource",
    "CredentialsMissing",
    "CredentialsUnreadable",
    "EffectiveBinding",
    "NothingBound",
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
    "check_entry",
    "credentials_for",
    "effective_bindings",
    "expand_search_template",
    "manifest_for",
    "merged_options",
    "permissions_state",
    "resolve",
    "resolve_plugin",
    "select",
    "unapproved_permissions",
    "validate_search_template",
]
