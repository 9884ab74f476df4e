"""The install wizard's last step (step 7): review what will be written, then install.

Owns ``FinishStep`` (the ``InstallPlan`` built from the pipeline, its summary, in which no
credential or secret option value is shown, the confirmation asked when the connection test
failed, and the call to ``finish_install``) and ``done_summary``: what the done page shows
(kept in the session under ``DONE_KEY``), including the template's sibling plugins that no
project type binds yet.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from imbi_plugin_sdk import OptionType

from imbi.core.models import Project, ProjectType
from plugins_core.models import Plugin, ProjectTypePlugin, Tab
from plugins_core.pages.forms import stored_status
from plugins_core.pages.wizard.finish import Finished, InstallPlan, WizardError, finish_install
from plugins_core.pages.wizard.pipeline import StepBase, wizard_url
from plugins_core.pages.wizard.state import DONE_KEY
from plugins_core.serving.resolution import expand_search_template


class FinishStep(StepBase):
    """Step 7: the summary, and the install on confirmation."""

    def plan(self) -> InstallPlan:
        choice = self.pipeline.service_choice
        binding = self.pipeline.state.get("binding") or {}
        return InstallPlan(
            organization=self.organization,
            entry=self.entry,
            service_mode=choice["mode"],
            service_id=choice.get("service_id"),
            new_service=dict(choice.get("new") or {}),
            settings=dict(choice.get("settings") or {}),
            credential_changes=self.pipeline.credential_changes(),
            options=self.pipeline.options(),
            project_type_ids=list(binding.get("project_type_ids") or []),
            default=bool(binding.get("default")),
            search_template=str(binding.get("search_template") or ""),
            connection=self.pipeline.connection(),
            replace_default=bool(binding.get("replace_default")),
        )

    def step_finish(self, request: HttpRequest) -> HttpResponse:
        plan = self.plan()
        error = ""
        failed_test = plan.connection is not None and not plan.connection["ok"]
        if request.method == "POST" and failed_test and not request.POST.get("confirm_failed"):
            error = (
                "the connection test failed; tick “Install anyway” to install regardless, "
                "or go back and fix the settings or credentials"
            )
        elif request.method == "POST":
            try:
                done = finish_install(plan, request.user)
            except WizardError as exc:
                error = str(exc)
            else:
                self.pipeline.discard()
                request.session.setdefault(DONE_KEY, {})[self.pipeline.id] = done_summary(
                    done, plan
                )
                request.session.modified = True
                return HttpResponseRedirect(wizard_url("done", self.pipeline.id))
        return self.show(
            request,
            "finish.html",
            summary=self.summary(plan),
            error=error,
            failed_test=failed_test,
        )

    def summary(self, plan: InstallPlan) -> dict[str, Any]:
        """What will be written; values of credentials and secret options are never shown."""
        service = self.pipeline.target_service(self.manifest)
        stored = set(self.pipeline.stored_credentials(self.manifest))
        changes = plan.credential_changes
        credentials = []
        for cred in self.manifest.credentials:
            if cred.name in changes:
                what = "will be removed" if changes[cred.name] is None else "will be set"
            else:
                what = f"{stored_status(cred.name in stored)} (unchanged)"
            credentials.append((cred.label, what))
        options = []
        for option in self.manifest.options:
            if option.name not in plan.options:
                shown = "(default)"
            elif option.type is OptionType.SECRET:
                shown = stored_status(bool(plan.options[option.name]))
            else:
                shown = json.dumps(plan.options[option.name])
            options.append((option.label, shown))
        types = list(
            ProjectType.objects.filter(pk__in=plan.project_type_ids, organization=self.organization)
        )
        preview = ""
        sample_id = (self.pipeline.state.get("binding") or {}).get("sample_project_id")
        sample = (
            Project.objects.filter(
                pk=sample_id or 0,
                organization=self.organization,
            )
            .select_related("organization", "project_type")
            .first()
        )
        if sample is not None and plan.search_template:
            try:
                preview = expand_search_template(
                    plan.search_template, sample, self.manifest.plugin_type.value
                )
            except ValueError:
                preview = ""
        return {
            "service_mode": plan.service_mode,
            "service": service,
            "new_service": plan.new_service,
            "settings": self.pipeline.service_settings(self.manifest),
            "credentials": credentials,
            "options": options,
            "connection": plan.connection,
            "project_types": types,
            "default": plan.default,
            "replace_default": plan.replace_default,
            "search_template": plan.search_template,
            "sample": sample,
            "preview": preview,
            "tab": self.manifest.plugin_type.value,
        }


def unbound_siblings(done: Finished) -> list[dict[str, Any]]:
    """The other plugins of the installed service that no project type binds yet."""
    bound = set(
        ProjectTypePlugin.objects.filter(plugin__service=done.service).values_list(
            "plugin_id", flat=True
        )
    )
    return [
        {"id": p.pk, "slug": p.slug, "name": p.name or p.slug, "tab": p.plugin_type}
        for p in Plugin.objects.filter(service=done.service, plugin_type__in=Tab.values)
        .exclude(pk=done.plugin.pk)
        .order_by("slug")
        if p.pk not in bound
    ]


def done_summary(done: Finished, plan: InstallPlan) -> dict[str, Any]:
    """What the done page shows (JSON-safe: it is kept in the session under ``DONE_KEY``)."""
    sample = (
        Project.objects.filter(
            organization=plan.organization, project_type_id__in=plan.project_type_ids
        )
        .order_by("slug")
        .values_list("pk", flat=True)
        .first()
    )
    return {
        "siblings": unbound_siblings(done),
        "project_type_ids": list(plan.project_type_ids),
        "organization_slug": plan.organization.slug,
        "sample_project_id": sample,
        "plugin": done.plugin.slug,
        "plugin_id": done.plugin.pk,
        "plugin_name": done.plugin.name or done.plugin.slug,
        "service": done.service.name,
        "service_id": done.service.pk,
        "created_service": done.created_service,
        "created_plugins": done.created_plugins,
        "credentials_changed": done.credentials_changed,
        "bindings": [
            f"{b.project_type.name} → {b.tab}{' (default)' if b.default else ''}"
            for b in done.bindings
        ],
        "organization": plan.organization.name,
        "connection": plan.connection,
    }
