"""Steps 1-3 of resolution: which binding serves a project's tab.

1. ``candidates``: merge the project type's and the project's bindings by (tab, plugin);
   the project's binding wins. One query returning only ids, slugs and default flags,
   whatever the number of bindings.
2. ``select``: ``?source=`` if given, else the default binding (a project default beats a
   type default), else the single candidate; several and no default is ambiguous (400),
   none is 404.
3. ``load_binding``: one query for the chosen plugin, its service, its credentials (as
   ciphertext) and both bindings' options and templates.

``effective_bindings`` loads every merged binding for listings (the tabs endpoint).
Step 4 is ``plugins_core.serving.resolution``.
"""

from __future__ import annotations

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

from imbi.core.models import Project
from plugins_core.models import Plugin as PluginRow
from plugins_core.models import ProjectPlugin, ProjectTypePlugin
from plugins_core.serving.errors import AmbiguousSource, NothingBound, SourceNotBound

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
