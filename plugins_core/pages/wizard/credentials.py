"""The install wizard's credentials step (step 3).

Owns ``CredentialsStep``: the manifest's credential fields, shown as set or not set (the
service's stored ones, or none when this wizard moves an operator-chosen host, then this
wizard's changes), never with their values. What is entered is kept encrypted in the pipeline
as *changes* (a value, or None to remove a stored one) until the finish.

Writes no table.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from plugins_core.pages.forms import CredentialsForm
from plugins_core.pages.wizard.pipeline import StepBase, submitted


class CredentialsStep(StepBase):
    """Step 3: the service's credentials (write-only)."""

    def step_credentials(self, request: HttpRequest) -> HttpResponse:
        stored_names = set(self.pipeline.stored_credentials(self.manifest))
        changes = self.pipeline.credential_changes()
        # Shown as "set": stored and not removed by this wizard, or entered in this wizard.
        removed = {name for name, value in changes.items() if value is None}
        effective = (stored_names - removed) | (set(changes) - removed)
        form = CredentialsForm(
            self.manifest.credentials,
            submitted(request),
            stored_names=effective,
            manifests=[self.manifest],
        )
        if request.method == "POST" and form.is_valid():
            merged = dict(changes)
            for name, value in form.changes.items():
                if value is None and name not in stored_names:
                    merged.pop(name, None)  # removing a value only this wizard held
                else:
                    merged[name] = value
            if merged != changes:  # else the last connection test still holds
                self.pipeline.set_credential_changes(merged)
                self.pipeline.changed()
            return self.next()
        return self.show(
            request,
            "form.html",
            form=form,
            status=form.status(),
            intro="Credentials are stored encrypted and are never shown again. "
            "Secret fields are write-only.",
            service=self.pipeline.target_service(self.manifest),
        )
