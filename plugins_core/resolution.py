"""Resolution: which plugin serves a project's tab, with which options and credentials.

Read top-down, this is ADR 0008 section 4:

1. ``effective_bindings``: merge the project type's and the project's bindings by
   (tab, plugin); the project's binding wins. Two queries, whatever the number of bindings.
2. ``select``: ``?source=`` if given, else the default binding (a project default beats a
   type default), else the single candidate; several and no default is ambiguous (400),
   none is 404.
3. ``resolve``: check the plugin is enabled and its handler loaded and compatible (else 503
   with the reason), merge options (plugin, type binding, project binding), expand the search
   template, and decrypt the credentials. Credentials are decrypted here and nowhere else.

Errors are ``ResolutionError`` subclasses carrying a stable ``code`` and an HTTP status.
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db.models import ExpressionWrapper, F, TextField

from imbi.core import crypto
from imbi.core.models import Project

from . import registry
from .models import Plugin as PluginRow
from .models import ProjectPlugin, ProjectTypePlugin
from .sdk import Credentials, ManifestError, OptionValidationError, PluginContext, PluginManifest

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


# --- 1. merge ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EffectiveBinding:
    """One plugin serving one tab of a project, after merging type and project bindings."""

    plugin: PluginRow
    tab: str
    default: bool
    project_default: bool
    search_template: str
    options: Mapping[str, Any]
    scope: str  # "project" or "project_type"
    type_binding_id: int | None = None
    project_binding_id: int | None = None
    credentials_token: str | None = field(default=None, repr=False)


_RELATED = ("plugin", "plugin__service")
# The service's credentials ride along as ciphertext (decrypted only in credentials_for), so
# listing bindings never decrypts and a whole resolution stays at two binding queries.
_TOKEN = ExpressionWrapper(F("plugin__service__application__credentials"), output_field=TextField())


def effective_bindings(project: Project, tab: str | None = None) -> list[EffectiveBinding]:
    """The project's bindings merged over its type's, ordered by tab then plugin slug."""
    type_rows: Any = ProjectTypePlugin.objects.filter(project_type_id=project.project_type_id)
    project_rows: Any = ProjectPlugin.objects.filter(project_id=project.pk)
    if tab is not None:
        type_rows, project_rows = type_rows.filter(tab=tab), project_rows.filter(tab=tab)
    merged: dict[tuple[str, int], EffectiveBinding] = {}
    for row in type_rows.select_related(*_RELATED).annotate(token=_TOKEN):
        merged[(row.tab, row.plugin_id)] = EffectiveBinding(
            plugin=row.plugin,
            tab=row.tab,
            default=row.default,
            project_default=False,
            search_template=row.search_template,
            options=dict(row.options),
            scope="project_type",
            type_binding_id=row.pk,
            credentials_token=row.token,
        )
    for row in project_rows.select_related(*_RELATED).annotate(token=_TOKEN):
        inherited = merged.get((row.tab, row.plugin_id))
        options = {**(inherited.options if inherited else {}), **row.options}
        merged[(row.tab, row.plugin_id)] = EffectiveBinding(
            plugin=row.plugin,
            tab=row.tab,
            default=row.default or bool(inherited and inherited.default),
            project_default=row.default,
            search_template=row.search_template or (inherited.search_template if inherited else ""),
            options=options,
            scope="project",
            type_binding_id=inherited.type_binding_id if inherited else None,
            project_binding_id=row.pk,
            credentials_token=row.token,
        )
    return sorted(merged.values(), key=lambda b: (b.tab, b.plugin.slug))


# --- 2. select -----------------------------------------------------------------------


def select(bindings: list[EffectiveBinding], tab: str, source: str | None) -> EffectiveBinding:
    candidates = [b for b in bindings if b.tab == tab]
    slugs = [b.plugin.slug for b in candidates]
    if source:
        for binding in candidates:
            if binding.plugin.slug == source:
                return binding
        raise SourceNotBound(
            f"no plugin '{source}' serves the {tab} tab of this project", available=slugs
        )
    if not candidates:
        raise NothingBound(f"no plugin is bound to the {tab} tab of this project")
    defaults = [b for b in candidates if b.project_default] or [b for b in candidates if b.default]
    if len(defaults) == 1:
        return defaults[0]
    if len(candidates) == 1:
        return candidates[0]
    raise AmbiguousSource(
        f"{len(candidates)} plugins serve the {tab} tab and none is the default; "
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
    if entry.status is registry.Status.INCOMPATIBLE:
        raise PluginIncompatible(f"plugin '{plugin.slug}': {entry.reason}")
    if not entry.ok or entry.handler is None or entry.manifest is None:
        raise PluginUnavailable(f"plugin '{plugin.slug}' cannot load: {entry.reason}")
    return entry


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
    """Decrypt the service's shared credentials. The only place credentials are decrypted."""
    plugin = binding.plugin
    stored: dict[str, str] = {}
    if binding.credentials_token:
        try:
            stored = dict(
                crypto.decrypt_json(
                    binding.credentials_token, where=f"credentials of {plugin.service.slug}"
                )
            )
        except crypto.DecryptionError:
            logger.error("credentials of service %s cannot be decrypted", plugin.service.slug)
            raise CredentialsUnreadable(
                f"the credentials of service '{plugin.service.slug}' cannot be decrypted with "
                "the configured keys"
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


def resolve(
    project: Project,
    tab: str,
    source: str | None = None,
    *,
    snapshot: registry.Snapshot | None = None,
    timeout: float = 10.0,
    storage_factory: Any = None,
) -> Resolved:
    snapshot = snapshot or registry.current()
    binding = select(effective_bindings(project, tab), tab, source)
    entry = check_entry(binding.plugin, snapshot)
    manifest = entry.manifest
    assert manifest is not None  # checked by check_entry
    try:
        template = expand_search_template(binding.search_template, project, tab)
    except (TemplateError, ValueError) as exc:
        raise PluginMisconfigured(f"search template: {exc}") from None
    storage = (
        storage_factory(binding.plugin.pk)
        if storage_factory and manifest.permissions.storage
        else None
    )
    context = PluginContext(
        organization=project.organization.slug,
        project_id=project.pk,
        project_slug=project.slug,
        project_type=project.project_type.slug,
        tab=tab,
        options=merged_options(manifest, binding.plugin, binding.options),
        search_template=template,
        timeout=timeout,
        logger=logging.getLogger(f"imbi.plugins.{manifest.slug}"),
        storage=storage,
        service_settings=dict(binding.plugin.service.settings),
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
    "ManifestError",
    "NothingBound",
    "PluginDisabled",
    "PluginIncompatible",
    "PluginMisconfigured",
    "PluginUnavailable",
    "ResolutionError",
    "Resolved",
    "SourceNotBound",
    "TemplateError",
    "check_entry",
    "credentials_for",
    "effective_bindings",
    "expand_search_template",
    "manifest_for",
    "merged_options",
    "resolve",
    "select",
    "validate_search_template",
]
