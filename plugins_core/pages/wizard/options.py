"""The install wizard's options step (step 4).

Owns ``OptionsStep``: the form generated from the manifest's options, filled with what this
wizard entered or, the first time, the options of the plugin the install will update. The
values are kept encrypted in the pipeline until the finish.

Writes no table.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from plugins_core.pages.forms import OptionsForm
from plugins_core.pages.wizard.pipeline import StepBase, submitted


class OptionsStep(StepBase):
    """Step 4: the plugin's options."""

    def step_options(self, request: HttpRequest) -> HttpResponse:
        if self.pipeline.completed("options"):
            stored = self.pipeline.options()
        else:
            plugin = self.pipeline.target_plugin(self.manifest)
            stored = dict(plugin.options) if plugin else {}
        form = OptionsForm(self.manifest, submitted(request), stored=stored)
        if request.method == "POST" and form.is_valid():
            if not self.pipeline.completed("options") or form.options != stored:
                self.pipeline.set_options(form.options)
                self.pipeline.changed()  # else the last connection test still holds
            return self.next()
        return self.show(
            request,
            "form.html",
            form=form,
            intro="" if self.manifest.options else "This plugin has no options.",
        )
