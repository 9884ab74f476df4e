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

from plugins_core.models import Tab
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
        bindable = tab in Tab.values
        if (
            request.method == "POST"
            and form.is_valid()
            and not bindable
            and (form.cleaned_data["project_types"])
        ):
            form.add_error("project_types", f"A {tab} plugin does not serve a tab.")
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            sample = data.get("sample_project")
            self.pipeline.state["binding"] = {
                "project_type_ids": sorted(pt.pk for pt in data["project_types"]),
                "default": bool(data["default"]),
                "search_template": data["search_template"],
                "sample_project_id": sample.pk if sample else None,
            }
            return self.next()
        intro = "" if bindable else f"A {tab} plugin is not bound to a tab; continue."
        return self.show(
            request, "bind.html", form=form, intro=intro, preview_url=wizard_url("preview")
        )
