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

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse, reverse_lazy
from django.utils.decorators import method_decorator
from django.views import View
from imbi_plugin_sdk import DataType, LogLevel
from imbi_plugin_sdk.errors import InvalidInput

from imbi.core.access import Grant, can_bind_project_grant, load_project
from imbi.core.models import Project
from plugins_core import registry
from plugins_core.models import (
    Plugin,
    ProjectPlugin,
    ProjectTypePlugin,
    Tab,
)
from plugins_core.pages.forms import (
    AddBindingForm,
    BindingForm,
    OptionsForm,
    offer_replace_default,
)
from plugins_core.provisioning import bindings as binding_service
from plugins_core.serving import health
from plugins_core.serving.resolution import ResolutionError, manifest_for, preview_search_template

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


def histogram_sources(rows: list[BindingRow]) -> list[str]:
    """The log sources whose manifest declares a histogram: the page asks only those for
    one (another answers 501 ``not_supported``, a needless error in the console)."""
    snapshot = registry.current()
    found = []
    for row in rows:
        manifest = manifest_for(row.plugin, snapshot) if row.tab == "logs" else None
        if manifest is not None and manifest.hints.supports_histogram:
            found.append(row.plugin.slug)
    return sorted(set(found))


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
        rows = binding_rows(project)
        return render(
            request,
            "plugins_core/project.html",
            {
                "project": project,
                "grant": grant,
                "can_bind": can_bind,
                "can_reveal": grant.read_secrets,
                "rows": rows,
                "histogram_sources": " ".join(histogram_sources(rows)),
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
            data["replace_default"] = form.replace_default
            try:
                binding = binding_service.create_project_binding(project, data, request.user)
            except (InvalidInput, ResolutionError) as exc:
                if not offer_replace_default(form, exc, data["plugin"]):
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
            data["replace_default"] = form.replace_default
            try:
                binding_service.update_binding(binding, data, request.user)
            except (InvalidInput, ResolutionError) as exc:
                if not offer_replace_default(form, exc, binding.plugin.slug):
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
    """Unbind: GET (and a POST without ``confirm=yes``) shows what it affects; the POST
    with ``confirm=yes`` removes the binding."""

    def get(self, request: HttpRequest, org: str, project_id: int, binding_id: int) -> HttpResponse:
        project, binding = BindingView()._load(request, org, project_id, binding_id)
        return self._confirm(request, project, binding)

    def _confirm(
        self, request: HttpRequest, project: Project, binding: ProjectPlugin
    ) -> HttpResponse:
        plugin = binding.plugin
        inherited = ProjectTypePlugin.objects.filter(
            project_type_id=project.project_type_id, plugin=plugin
        ).exists()
        after = (
            "The project type's binding of the plugin applies again."
            if inherited
            else f"The {binding.tab} tab no longer shows {plugin.slug} for this project."
        )
        return confirmation(
            request,
            "plugins_core/confirm.html",
            {
                "title": f"Unbind {plugin.slug}",
                "question": f"Remove this project's {binding.tab} binding of {plugin.slug} "
                f"from {project.name}?",
                "consequence": f"{after} Its option overrides and search template are deleted.",
                "impact": {"projects": 1, "bindings": 1},
                "action": request.path,
                "hidden": [],
                "confirm_label": f"Yes, unbind {plugin.slug}",
                "cancel_url": project_url(org_slug(project), project.pk),
            },
        )

    def post(
        self, request: HttpRequest, org: str, project_id: int, binding_id: int
    ) -> HttpResponse:
        project, binding = BindingView()._load(request, org, project_id, binding_id)
        if not confirmed(request):
            return self._confirm(request, project, binding)
        binding_service.delete_binding(binding, request.user)
        messages.success(request, f"Removed the {binding.tab} binding of {binding.plugin}.")
        return HttpResponseRedirect(project_url(org, project.pk))


def org_slug(project: Project) -> str:
    return str(project.organization.slug)


@login
class ProjectPreviewView(View):
    """JSON: the project's expansion of a search template (validated server-side)."""

    def get(self, request: HttpRequest, org: str, project_id: int) -> JsonResponse:
        project, _ = _project(request, org, project_id)
        tab = request.GET.get("tab", "configuration")
        return JsonResponse(preview_search_template(request.GET.get("template", ""), project, tab))


# --------------------------------------------------------------------------- admin registry


def confirmation(
    request: HttpRequest, template: str, context: dict[str, Any], admin_site: Any = None
) -> HttpResponse:
    """A destructive action's confirmation page (Django's delete-confirmation pattern):
    what it will affect; its form posts the same fields again with ``confirm=yes``."""
    extra = admin_site.each_context(request) if admin_site is not None else {}
    return render(request, template, {**extra, **context})


def confirmed(request: HttpRequest) -> bool:
    return request.method == "POST" and request.POST.get("confirm") == "yes"


__all__ = [
    "AddBindingView",
    "BindingView",
    "DeleteBindingView",
    "ProjectListView",
    "ProjectPageView",
    "ProjectPreviewView",
    "confirmation",
    "confirmed",
]
