"""The install wizard's connection test (step 5).

Owns ``test_connection`` (calls the plugin's ``test_connection()`` through the runner, like
every other call, with the values entered so far; every credential and secret option value is
scrubbed from the outcome; nothing is written: storage is an in-memory store),
``TEST_TIMEOUT`` and ``ConnectionStep`` (run the test, optionally for a sample project and search
template, or skip it). The outcome is kept in the pipeline with the revision of the inputs it
was run with; ``finish_install`` records it as the plugin's first health check.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from imbi_plugin_sdk import (
    Credentials,
    MemoryKeyValueStore,
    OptionValidationError,
    PluginContext,
    PluginError,
    PluginFailed,
    redact,
    secret_values,
)

from imbi.core.models import Organization, Project
from plugins_core import registry
from plugins_core.pages.forms import ConnectionTestForm
from plugins_core.pages.wizard.pipeline import StepBase, wizard_url
from plugins_core.serving.projects import DatabaseProjectMetadata
from plugins_core.serving.resolution import TemplateError, expand_search_template
from plugins_core.serving.runner import Runner, Target, default_runner

TEST_TIMEOUT = 10.0


def test_connection(
    manifest_entry: registry.Entry,
    organization: Organization,
    options: Mapping[str, object],
    settings: Mapping[str, Any],
    credentials: Mapping[str, str],
    *,
    project: Project | None = None,
    search_template: str = "",
    runner: Runner | None = None,
) -> dict[str, Any]:
    """Call ``test_connection()`` through the runner with the entered values.

    The plugin has no row yet, so the runner gets a ``Target`` (entry, context, credentials).
    With a ``project``, the context is that project's (and ``search_template`` is expanded
    for it), as a binding would give. Returns ``{"ok", "message", "details"}`` with every
    credential and secret option value scrubbed from the text. Nothing is written (storage
    is an in-memory store).
    """
    manifest = manifest_entry.manifest
    assert manifest is not None
    known = {f.name for f in manifest.credentials}
    entered = Credentials({k: v for k, v in credentials.items() if k in known})
    secrets = secret_values(manifest, options, credentials)
    outcome: dict[str, Any]
    tab = manifest.plugin_type.value
    started = time.monotonic()
    try:
        where: dict[str, Any] = {}
        if project is not None:
            where = {
                "project_id": project.pk,
                "project_slug": project.slug,
                "project_type": project.project_type.slug,
                "tab": tab,
                "search_template": expand_search_template(search_template, project, tab),
            }
        context = PluginContext(
            organization=organization.slug,
            **where,
            options=manifest.validate_options(dict(options)),
            timeout=TEST_TIMEOUT,
            storage=MemoryKeyValueStore() if manifest.permissions.storage else None,
            service_settings=dict(settings),
            projects=(
                DatabaseProjectMetadata(organization.pk, project.pk if project else None)
                if manifest.permissions.project_metadata
                else None
            ),
        )
        target = Target(manifest_entry, context, entered)
        result = (runner or default_runner()).call(target, "test_connection")
        outcome = {"ok": result.ok, "message": result.message, "details": dict(result.details)}
    except OptionValidationError as exc:
        outcome = {
            "ok": False,
            "message": f"options are invalid: {', '.join(exc.errors)}",
            "details": {},
        }
    except TemplateError as exc:
        outcome = {"ok": False, "message": f"search template: {exc}", "details": {}}
    except PluginFailed as exc:  # a plugin bug: the log has the traceback, the page the reason
        outcome = {"ok": False, "message": exc.detail, "details": {}}
    except PluginError as exc:
        outcome = {"ok": False, "message": f"{exc.code}: {exc.detail}", "details": {}}
    outcome["message"] = redact(str(outcome["message"]), secrets)
    details: dict[str, Any] = outcome["details"]
    outcome["details"] = {k: redact(str(v), secrets) for k, v in details.items()}
    outcome["duration_ms"] = int((time.monotonic() - started) * 1000)
    return outcome


class ConnectionStep(StepBase):
    """Step 5: test the connection with the values entered so far (or skip it)."""

    def step_test(self, request: HttpRequest) -> HttpResponse:
        where = self.pipeline.state.get("test_with") or {}
        testing = request.method == "POST" and request.POST.get("action") == "test"
        form = ConnectionTestForm(
            request.POST if testing else None,
            organization=self.organization,
            initial={
                "sample_project": where.get("sample_project_id"),
                "search_template": where.get("search_template", ""),
            },
        )
        if request.method == "POST" and not testing:
            return self.next()
        if testing and form.is_valid():
            project = form.cleaned_data["sample_project"]
            template = form.cleaned_data["search_template"]
            outcome = test_connection(
                self.entry,
                self.organization,
                self.pipeline.options(),
                self.pipeline.service_settings(self.manifest),
                self.pipeline.credentials(self.manifest),
                project=project,
                search_template=template,
            )
            self.pipeline.state["connection"] = {
                **outcome,
                "revision": self.pipeline.state["revision"],
            }
            self.pipeline.state["test_with"] = {
                "sample_project_id": project.pk if project else None,
                "search_template": template,
            }
            self.pipeline.save()
            return HttpResponseRedirect(wizard_url("step", self.pipeline.id, "test"))
        return self.show(
            request,
            "test.html",
            connection=self.pipeline.connection(),
            form=form,
            settings=self.pipeline.service_settings(self.manifest),
        )
