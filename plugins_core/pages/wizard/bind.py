"""The install wizard's binding step (step 6).

Owns ``BindStep``: the organization's project types the plugin will serve (as their default
plugin for its tab or not), with the search template and a sample project to preview it on
(the preview is ``PreviewView``). A plugin type that serves no tab binds to none. The choice
is kept in the pipeline; ``finish_install`` creates the bindings through
``plugins_core.provisioning.bindings``.

Writes no table.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from plugins_core.models import ProjectTypePlugin, Tab
from plugins_core.pages.forms import TypeBindingForm
from plugins_core.pages.wizard.pipeline import StepBase, submitted, wizard_url


class BindStep(StepBase):
    """Step 6: bind the plugin to project types."""

    def step_bind(self, request: HttpRequest) -> HttpResponse:
        saved = self.pipeline.state.get("binding") or {}
        tested = self.pipeline.state.get("test_with") or {}
        tab = self.manifest.plugin_type.value
        initial = {
            "project_types": saved.get("project_type_ids", []),
            "default": saved.get("default", True),
            "search_template": saved.get("search_template", tested.get("search_template", "")),
            "sample_project": saved.get("sample_project_id", tested.get("sample_project_id")),
        }
        form = TypeBindingForm(
            submitted(request), initial=initial, organization=self.organization, tab=tab
        )
        if not form.is_bound and saved.get("replace_default"):  # chosen before: serve it again
            form.fields["replace_default"] = form._replace_field("this plugin", "the current one")
            form.fields["replace_default"].initial = True
        bindable = tab in Tab.values
        if (
            request.method == "POST"
            and form.is_valid()
            and not bindable
            and (form.cleaned_data["project_types"])
        ):
            form.add_error("project_types", f"A {tab} plugin does not serve a tab.")
        if request.method == "POST" and form.is_valid() and bindable:
            self._check_defaults(form, tab)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            sample = data.get("sample_project")
            self.pipeline.state["binding"] = {
                "project_type_ids": sorted(pt.pk for pt in data["project_types"]),
                "default": bool(data["default"]),
                "replace_default": bool(data["default"]) and form.replace_default,
                "search_template": data["search_template"],
                "sample_project_id": sample.pk if sample else None,
            }
            return self.next()
        intro = "" if bindable else f"A {tab} plugin is not bound to a tab; continue."
        return self.show(
            request, "bind.html", form=form, intro=intro, preview_url=wizard_url("preview")
        )

    def _check_defaults(self, form: TypeBindingForm, tab: str) -> None:
        """A project type whose tab has another default already: say which, and offer to
        make this plugin the default instead (else the last step would fail)."""
        data = form.cleaned_data
        if not data.get("default") or form.replace_default:
            return
        service = self.pipeline.target_service(self.manifest)
        rows = (
            ProjectTypePlugin.objects.select_related("plugin", "project_type")
            .filter(project_type__in=data["project_types"], tab=tab, default=True)
            .order_by("project_type__name")
        )
        if service is not None:  # this plugin's own binding is updated, not a conflict
            rows = rows.exclude(plugin__service=service, plugin__handler=self.entry.name)
        found = list(rows)
        if found:
            current = ", ".join(sorted({row.plugin.slug for row in found}))
            where = ", ".join(row.project_type.name for row in found)
            form.offer_replace_default(self.manifest.slug, current, where)
