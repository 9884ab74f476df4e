"""Server-rendered pages: the project page for project owners, and the admin registry page.

Owns:

* the project pages (``/projects/...``): a list of the caller's projects and one project's
  page. The Configuration and Logs tabs are filled in the browser from the REST API
  (``static/plugins_core/project.js``); the bindings section is rendered here, and owners of
  the project (or org admins) bind, override and unbind plugins through
  ``plugins_core.provisioning.bindings``. Credentials never appear on these pages;
* the admin registry page: every discovered entry point with its status, and the installed
  plugins with enable/disable actions (through ``plugins_core.provisioning.lifecycle``, audited).

The login page for members who are not staff is Django's, routed in ``plugins_core.urls``.

Views stay thin: parse, authorize (``imbi.core.access``), call a service function, render.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse, reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from imbi_plugin_sdk import DataType, LogLevel
from imbi_plugin_sdk.errors import InvalidInput
from packaging.utils import canonicalize_name as canonical

from imbi.core import access
from imbi.core.access import Grant, can_bind_project_grant, load_project
from imbi.core.models import Membership, Project
from plugins_core import registry
from plugins_core.models import ConnectionCheck, Plugin, ProjectPlugin, ProjectTypePlugin, Tab
from plugins_core.pages import catalog
from plugins_core.pages.forms import AddBindingForm, BindingForm, OptionsForm
from plugins_core.provisioning import bindings as binding_service
from plugins_core.provisioning.lifecycle import set_plugin_enabled
from plugins_core.serving import health
from plugins_core.serving.resolution import ResolutionError, manifest_for, preview_search_template
from plugins_core.supply import install as index_install
from plugins_core.supply import trust

LOGIN_URL = reverse_lazy("ui:login")
login = method_decorator(login_required(login_url=LOGIN_URL), name="dispatch")


# --------------------------------------------------------------------------- project pages


def _project(request: HttpRequest, org: str, project_id: int) -> tuple[Project, Grant]:
    return load_project(request.user, org, project_id)


def _require_bind(request: HttpRequest, project: Project, grant: Grant) -> None:
    if not can_bind_project_grant(request.user, grant, project):
        raise PermissionDenied("Binding plugins needs an org admin or an owner of this project.")


@dataclass(frozen=True, slots=True)
class BindingRow:
    """One plugin on one tab of the project: its type binding, its own binding, or both.

    Shows names of overridden options, never option values (a secret option could be one).
    """

    plugin: Plugin
    tab: str
    type_binding: ProjectTypePlugin | None
    project_binding: ProjectPlugin | None
    status: str
    reason: str
    tested_at: Any = None

    @property
    def scope(self) -> str:
        return "project" if self.project_binding is not None else "project_type"

    @property
    def default(self) -> bool:
        return any(b is not None and b.default for b in (self.project_binding, self.type_binding))

    @property
    def search_template(self) -> str:
        own = self.project_binding.search_template if self.project_binding else ""
        return own or (self.type_binding.search_template if self.type_binding else "")

    @property
    def overridden(self) -> list[str]:
        return sorted(self.project_binding.options) if self.project_binding else []


def binding_rows(project: Project) -> list[BindingRow]:
    """The project's bindings merged over its type's by (tab, plugin); two queries."""
    snapshot = registry.current()
    merged: dict[tuple[str, int], dict[str, Any]] = {}
    for type_row in ProjectTypePlugin.objects.filter(
        project_type_id=project.project_type_id
    ).select_related("plugin", "plugin__service", "plugin__connection"):
        merged[(type_row.tab, type_row.plugin_id)] = {
            "plugin": type_row.plugin,
            "type_binding": type_row,
        }
    for own in ProjectPlugin.objects.filter(project=project).select_related(
        "plugin", "plugin__service", "plugin__connection"
    ):
        merged.setdefault((own.tab, own.plugin_id), {"plugin": own.plugin})["project_binding"] = own
    rows = []
    for (tab, _), parts in sorted(merged.items(), key=lambda i: (i[0][0], i[1]["plugin"].slug)):
        found = health.badge(parts["plugin"], snapshot)
        rows.append(
            BindingRow(
                plugin=parts["plugin"],
                tab=tab,
                type_binding=parts.get("type_binding"),
                project_binding=parts.get("project_binding"),
                status=found.status,
                reason=found.reason,
                tested_at=found.tested_at,
            )
        )
    return rows


def _bindable_plugins(project: Project) -> QuerySet[Plugin]:
    bound = ProjectPlugin.objects.filter(project=project).values("plugin_id")
    return (
        Plugin.objects.filter(
            organization=project.organization, enabled=True, plugin_type__in=Tab.values
        )
        .exclude(pk__in=bound)
        .order_by("plugin_type", "slug")
    )


def _api_urls(project: Project) -> dict[str, str]:
    args = (project.organization.slug, project.pk)
    return {
        "tabs": reverse("project-tabs", args=args),
        "values": reverse("configuration-values", args=args),
        "logs": reverse("logs", args=args),
        "histogram": reverse("logs-histogram", args=args),
        "keys": reverse("configuration-key", args=(*args, "KEY")).removesuffix("KEY"),
    }


@login
class ProjectListView(View):
    def get(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        user_id = user.pk or 0
        projects = Project.objects.select_related("organization", "project_type")
        if not getattr(user, "is_superuser", False):
            projects = projects.filter(organization__memberships__user_id=user_id)
        owned = set(Project.objects.filter(owners__pk=user_id).values_list("pk", flat=True))
        return render(
            request,
            "plugins_core/project_list.html",
            {"projects": projects.order_by("organization__slug", "slug"), "owned": owned},
        )


PAGE_TABS = ("configuration", "logs", "plugins")


def project_url(org: str, project_id: int, tab: str = "plugins") -> str:
    """The project page with ``tab`` open (saves and unbinds land where they happened)."""
    return f"{reverse('ui:project', args=(org, project_id))}?tab={tab}"


@login
class ProjectPageView(View):
    """The project page: tabs from the REST API, bindings rendered here."""

    def get(
        self,
        request: HttpRequest,
        org: str,
        project_id: int,
        add_form: AddBindingForm | None = None,
    ) -> HttpResponse:
        project, grant = _project(request, org, project_id)
        can_bind = can_bind_project_grant(request.user, grant, project)
        if add_form is None and can_bind:
            add_form = AddBindingForm(plugins=_bindable_plugins(project))
        active = request.GET.get("tab", "")
        if add_form is not None and add_form.is_bound:
            active = "plugins"  # a failed Bind: its errors are on the Plugins tab
        if active not in PAGE_TABS:
            active = PAGE_TABS[0]
        return render(
            request,
            "plugins_core/project.html",
            {
                "project": project,
                "grant": grant,
                "can_bind": can_bind,
                "can_reveal": grant.read_secrets,
                "rows": binding_rows(project),
                "add_form": add_form,
                "api": _api_urls(project),
                "role": "admin (superuser)" if request.user.is_superuser else grant.role,
                "levels": [level.value for level in LogLevel],
                "active_tab": active,
                "tab_labels": [(name, name.capitalize()) for name in PAGE_TABS],
                "can_write": grant.at_least("editor"),
                "data_types": [d.value for d in DataType],
            },
        )


@login
class AddBindingView(View):
    """Bind a plugin to this project (also "override" an inherited project-type binding)."""

    def post(self, request: HttpRequest, org: str, project_id: int) -> HttpResponse:
        project, grant = _project(request, org, project_id)
        _require_bind(request, project, grant)
        form = AddBindingForm(
            request.POST,
            plugins=Plugin.objects.filter(
                organization=project.organization, plugin_type__in=Tab.values
            ),
        )
        if form.is_valid():
            data = {key: form.cleaned_data[key] for key in ("plugin", "default", "search_template")}
            try:
                binding = binding_service.create_project_binding(project, data, request.user)
            except (InvalidInput, ResolutionError) as exc:
                _form_errors(form, exc)
            else:
                messages.success(request, f"Bound {binding.plugin} to the {binding.tab} tab.")
                return HttpResponseRedirect(
                    reverse("ui:project-binding", args=(org, project.pk, binding.pk))
                )
        return ProjectPageView().get(request, org, project_id, add_form=form)


def _form_errors(form: Any, exc: InvalidInput | ResolutionError, options: Any = None) -> None:
    """Put a binding service's field errors on the forms; the rest on the main form."""
    fields = exc.fields if isinstance(exc, InvalidInput) else dict(exc.extra.get("errors", {}))
    placed = False
    for name, message in fields.items():
        if name.startswith("options.") and options is not None:
            option = name.removeprefix("options.")
            options.add_error(option if option in options.fields else None, message)
        elif name in form.fields:
            form.add_error(name, message)
        else:
            form.add_error(None, f"{name}: {message}")
        placed = True
    if not placed:
        form.add_error(None, exc.detail)


@login
class BindingView(View):
    """Edit one of the project's own bindings: default, search template, option overrides."""

    def _load(
        self, request: HttpRequest, org: str, project_id: int, binding_id: int
    ) -> tuple[Project, ProjectPlugin]:
        project, grant = _project(request, org, project_id)
        _require_bind(request, project, grant)
        binding = (
            ProjectPlugin.objects.select_related("plugin", "plugin__service", "project")
            .filter(project=project, pk=binding_id)
            .first()
        )
        if binding is None:
            raise Http404
        return project, binding

    def _forms(
        self, binding: ProjectPlugin, data: Any = None
    ) -> tuple[BindingForm, OptionsForm | None]:
        form = BindingForm(
            data, initial={"default": binding.default, "search_template": binding.search_template}
        )
        manifest = manifest_for(binding.plugin)
        if manifest is None:
            return form, None
        type_row = ProjectTypePlugin.objects.filter(
            project_type_id=binding.project.project_type_id, plugin=binding.plugin
        ).first()
        inherited = {**binding.plugin.options, **(type_row.options if type_row else {})}
        return form, OptionsForm(
            manifest, data, stored=binding.options, inherited=inherited, partial=True, prefix="opt"
        )

    def get(self, request: HttpRequest, org: str, project_id: int, binding_id: int) -> HttpResponse:
        project, binding = self._load(request, org, project_id, binding_id)
        form, options = self._forms(binding)
        return self.show(request, project, binding, form, options)

    def post(
        self, request: HttpRequest, org: str, project_id: int, binding_id: int
    ) -> HttpResponse:
        project, binding = self._load(request, org, project_id, binding_id)
        form, options = self._forms(binding, request.POST)
        if form.is_valid() and (options is None or options.is_valid()):
            data: dict[str, Any] = {
                "default": form.cleaned_data["default"],
                "search_template": form.cleaned_data["search_template"],
            }
            if options is not None:
                data["options"] = options.options
            try:
                binding_service.update_binding(binding, data, request.user)
            except (InvalidInput, ResolutionError) as exc:
                _form_errors(form, exc, options)
            else:
                messages.success(request, f"Saved the {binding.tab} binding of {binding.plugin}.")
                return HttpResponseRedirect(project_url(org, project.pk))
        return self.show(request, project, binding, form, options)

    def show(
        self,
        request: HttpRequest,
        project: Project,
        binding: ProjectPlugin,
        form: BindingForm,
        options: OptionsForm | None,
    ) -> HttpResponse:
        return render(
            request,
            "plugins_core/binding.html",
            {
                "project": project,
                "binding": binding,
                "form": form,
                "options": options,
                "preview_url": reverse(
                    "ui:project-preview", args=(project.organization.slug, project.pk)
                ),
            },
        )


@login
class DeleteBindingView(View):
    def post(
        self, request: HttpRequest, org: str, project_id: int, binding_id: int
    ) -> HttpResponse:
        project, binding = BindingView()._load(request, org, project_id, binding_id)
        binding_service.delete_binding(binding, request.user)
        messages.success(request, f"Removed the {binding.tab} binding of {binding.plugin}.")
        return HttpResponseRedirect(project_url(org, project.pk))


@login
class ProjectPreviewView(View):
    """JSON: the project's expansion of a search template (validated server-side)."""

    def get(self, request: HttpRequest, org: str, project_id: int) -> JsonResponse:
        project, _ = _project(request, org, project_id)
        tab = request.GET.get("tab", "configuration")
        return JsonResponse(preview_search_template(request.GET.get("template", ""), project, tab))


# --------------------------------------------------------------------------- admin registry


def can_admin_plugin(user: Any, plugin: Plugin) -> bool:
    return access.is_operator(user, plugin.organization)


@dataclass(frozen=True, slots=True)
class RegistryRow:
    entry: registry.Entry
    installed: list[Plugin]
    badge: str = "unsigned"

    @property
    def label(self) -> str:
        return self.entry.status.label

    @property
    def manifest(self) -> Any:
        return self.entry.manifest


class RegistryView(View):
    """Admin: every discovered entry point, and the installed plugins you administer."""

    admin_site: AdminSite | None = None

    def get(self, request: HttpRequest) -> HttpResponse:
        if not getattr(request.user, "is_staff", False):
            raise PermissionDenied
        snapshot = registry.current()
        plugins = Plugin.objects.select_related("organization", "service").order_by(
            "organization__slug", "slug"
        )
        if not request.user.is_superuser:
            plugins = plugins.filter(
                organization__in=access.administered_organizations(request.user)
            )
        by_handler: dict[str, list[Plugin]] = {}
        for plugin in plugins:
            by_handler.setdefault(plugin.handler, []).append(plugin)
        badges = trust.installed_badges()
        rows = [
            RegistryRow(entry, by_handler.pop(name, []), trust.badge_of(entry.distribution, badges))
            for name, entry in sorted(snapshot.entries.items())
        ]
        orphans = [p for group in by_handler.values() for p in group]
        context = self.admin_site.each_context(request) if self.admin_site else {}
        return render(
            request,
            "admin/plugins_core/registry.html",
            {
                **context,
                "title": "Plugin registry",
                "rows": rows,
                "orphans": orphans,
                "snapshot": snapshot,
                "host_api": registry.HOST_API_VERSION,
                "can_install": access.administers_any(request.user),
            },
        )


class PluginStateView(View):
    """Admin: POST ``enabled=1|0`` to enable or disable one installed plugin.

    A plugin of an organization the caller does not administer is a 404, like a missing one.
    """

    def post(self, request: HttpRequest, plugin_id: int) -> HttpResponse:
        if not access.administers_any(request.user):
            raise PermissionDenied
        plugin = (
            Plugin.objects.select_related("organization")
            .filter(pk=plugin_id, organization__in=access.administered_organizations(request.user))
            .first()
            if 0 < plugin_id < 2**63
            else None
        )
        if plugin is None or not can_admin_plugin(request.user, plugin):
            raise Http404
        enabled = request.POST.get("enabled") == "1"
        if set_plugin_enabled(plugin, enabled, request.user):
            messages.success(
                request,
                f"{plugin.slug} in {plugin.organization.slug} is now "
                f"{'enabled' if enabled else 'disabled'}.",
            )
        target = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(
            target, {request.get_host()}, require_https=request.is_secure()
        ):
            target = reverse("admin:plugins_core_registry")
        return HttpResponseRedirect(target)


def _back(request: HttpRequest, fallback: str) -> HttpResponseRedirect:
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, {request.get_host()}, require_https=request.is_secure()
    ):
        target = fallback
    return HttpResponseRedirect(target)


class ConnectionTestView(View):
    """Admin: POST to run the connection test of one plugin, or of every plugin of a service
    (``scope`` is ``plugin`` or ``service``); the result is recorded and shown as a message."""

    scope = "plugin"

    def post(self, request: HttpRequest, object_id: int) -> HttpResponse:
        if self.scope == "service":
            plugins = list(
                Plugin.objects.select_related("organization", "service").filter(
                    service_id=object_id
                )
            )
            fallback = reverse("admin:plugins_core_thirdpartyservice_change", args=[object_id])
        else:
            plugins = list(
                Plugin.objects.select_related("organization", "service").filter(pk=object_id)
            )
            fallback = reverse("admin:plugins_core_plugin_change", args=[object_id])
        if self.scope == "plugin" and not plugins:
            raise Http404
        if not plugins:
            messages.warning(request, "This service has no plugins to test.")
        for plugin in plugins:
            if not can_admin_plugin(request.user, plugin):
                raise PermissionDenied
        for plugin in plugins:
            check = health.check_connection(
                plugin, trigger=ConnectionCheck.Trigger.ADMIN, actor=request.user
            )
            text = f"{plugin.slug}: connection {check.status} ({check.duration_ms} ms)"
            if check.message:
                text += f": {check.message}"
            (messages.success if check.status == "ok" else messages.error)(request, text)
        return _back(request, fallback)


__all__ = [
    "AddBindingView",
    "BindingView",
    "CatalogDetailView",
    "CatalogView",
    "ConnectionTestView",
    "DeleteBindingView",
    "PluginStateView",
    "ProjectListView",
    "ProjectPageView",
    "ProjectPreviewView",
    "RegistryView",
]


# --------------------------------------------------------------------------- catalog


def _viewer_org_ids(user: Any) -> list[int] | None:
    if getattr(user, "is_superuser", False):
        return None
    return list(
        Membership.objects.filter(user_id=user.pk).values_list("organization_id", flat=True)
    )


@login
class CatalogView(View):
    """The plugin catalog as a card grid: logo, type filter, search, installed marker."""

    def get(self, request: HttpRequest) -> HttpResponse:
        items = catalog.cards(_viewer_org_ids(request.user))
        offers = index_install.available() if access.is_superuser(request.user) else []
        updates = {canonical(o.name): o.installable for o in offers if o.update_available}
        return render(
            request,
            "plugins_core/catalog.html",
            {
                "offers": offers,
                "updates": updates,
                "cards": [
                    dataclasses.replace(
                        c, update=updates.get(canonical(c.entry.distribution or "-"), "")
                    )
                    for c in items
                ],
                "types": catalog.offered_types(items),
                "can_install": access.administers_any(request.user),
            },
        )


@login
class CatalogDetailView(View):
    """One plugin's details: description, permissions, options, credentials, docs, version."""

    def get(self, request: HttpRequest, entry_point: str) -> HttpResponse:
        found = [c for c in catalog.cards(_viewer_org_ids(request.user)) if c.name == entry_point]
        if not found:
            raise Http404
        return render(
            request,
            "plugins_core/catalog_detail.html",
            {
                "card": found[0],
                "can_install": access.administers_any(request.user),
                "has_readme": bool(catalog.readme(found[0])),
            },
        )


@login
class CatalogReadmeView(View):
    """A plugin distribution's own README (its package's long description), served here so a
    plugin with no homepage (the built-in local plugins) still has documentation."""

    def get(self, request: HttpRequest, entry_point: str) -> HttpResponse:
        found = [c for c in catalog.cards(_viewer_org_ids(request.user)) if c.name == entry_point]
        text = catalog.readme(found[0]) if found else ""
        if not text:
            raise Http404
        return render(
            request, "plugins_core/catalog_readme.html", {"card": found[0], "readme": text}
        )
