"""The install wizard's views, as ``plugins_core.pages.admin`` routes them.

Owns ``StepView`` (steps 2 to 7: the step machine ``pipeline.StepBase`` with each step's
module mixed in), ``CancelView`` (forget an install in progress; nothing was written),
``DoneView`` (what was installed, and binding the template's siblings) and ``PreviewView``
(JSON: a search template expanded for a sample project,
``plugins_core.serving.resolution.preview_search_template``). ``StartView`` (step 1) is
``choice.StartView``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from imbi_plugin_sdk.errors import InvalidInput

from imbi.core.access import installable_organizations
from imbi.core.models import Organization, Project
from plugins_core.models import ProjectTypePlugin
from plugins_core.pages.forms import SiblingBindingForm, offer_replace_default
from plugins_core.pages.wizard.bind import BindStep
from plugins_core.pages.wizard.choice import ServiceStep
from plugins_core.pages.wizard.connection import ConnectionStep
from plugins_core.pages.wizard.credentials import CredentialsStep
from plugins_core.pages.wizard.options import OptionsStep
from plugins_core.pages.wizard.pipeline import Pipeline, WizardView, authorize, wizard_url
from plugins_core.pages.wizard.review import FinishStep
from plugins_core.pages.wizard.state import DONE_KEY
from plugins_core.provisioning import bindings as binding_service
from plugins_core.serving.resolution import ResolutionError, preview_search_template


class StepView(ServiceStep, CredentialsStep, OptionsStep, ConnectionStep, BindStep, FinishStep):
    """Steps 2 to 7 of one pipeline; every request re-checks permission and the plugin."""


class CancelView(WizardView):
    def post(self, request: HttpRequest, pid: str) -> HttpResponse:
        authorize(request)
        pipeline = Pipeline.load(request, pid)
        if pipeline is not None:
            pipeline.discard()
        messages.info(request, "The install was cancelled; nothing was written.")
        return HttpResponseRedirect(reverse("admin:plugins_core_plugin_changelist"))


class DoneView(WizardView):
    """What was installed, and the next steps: bind the template's siblings (the other
    plugins the one-click install created, e.g. CloudWatch after SSM), open a project."""

    def _summary(self, request: HttpRequest, pid: str) -> dict[str, Any] | None:
        summary = (request.session.get(DONE_KEY) or {}).get(pid)
        return dict(summary) if summary else None

    def get(self, request: HttpRequest, pid: str, form: Any = None) -> HttpResponse:
        authorize(request)
        summary = self._summary(request, pid)
        if summary is None:
            return HttpResponseRedirect(reverse("admin:plugins_core_plugin_changelist"))
        organization = Organization.objects.filter(slug=summary["organization_slug"]).first()
        if organization is None:
            raise Http404
        siblings = [
            s
            for s in summary.get("siblings", [])
            if not ProjectTypePlugin.objects.filter(plugin_id=s["id"]).exists()
        ]
        sibling_forms = [
            (
                sibling,
                form
                if form is not None and form.prefix == f"s{sibling['id']}"
                else SiblingBindingForm(
                    organization=organization,
                    prefix=f"s{sibling['id']}",
                    initial={"project_types": summary.get("project_type_ids", [])},
                ),
            )
            for sibling in siblings
        ]
        project_url = ""
        if summary.get("sample_project_id"):
            project_url = reverse(
                "ui:project", args=(organization.slug, summary["sample_project_id"])
            )
        return render(
            request,
            "admin/plugins_core/install/done.html",
            self.context(
                request,
                title=f"Installed {summary['plugin_name']}",
                summary=summary,
                current="done",
                sibling_forms=sibling_forms,
                project_url=project_url,
                pid=pid,
            ),
        )

    def post(self, request: HttpRequest, pid: str) -> HttpResponse:
        """Bind one sibling (``sibling`` = its plugin id) to the chosen project types."""
        summary = self._summary(request, pid)
        if summary is None:
            return HttpResponseRedirect(reverse("admin:plugins_core_plugin_changelist"))
        organization = Organization.objects.filter(slug=summary["organization_slug"]).first()
        if organization is None:
            raise Http404
        authorize(request, organization)
        sibling = next(
            (s for s in summary.get("siblings", []) if str(s["id"]) == request.POST.get("sibling")),
            None,
        )
        if sibling is None:
            raise Http404
        form = SiblingBindingForm(
            request.POST, organization=organization, prefix=f"s{sibling['id']}"
        )
        if form.is_valid():
            data = {
                "plugin": sibling["slug"],
                "default": form.cleaned_data["default"],
                "search_template": form.cleaned_data["search_template"],
                "replace_default": form.replace_default,
            }
            where = ""
            try:
                with transaction.atomic():
                    for project_type in form.cleaned_data["project_types"]:
                        where = project_type.name
                        binding_service.create_type_binding(project_type, dict(data), request.user)
            except (InvalidInput, ResolutionError) as exc:
                if not offer_replace_default(form, exc, sibling["slug"], where):
                    fields = exc.fields if isinstance(exc, InvalidInput) else {}
                    for name, message in (fields or {"": exc.detail}).items():
                        form.add_error(name if name in form.fields else None, message)
            else:
                names = ", ".join(t.name for t in form.cleaned_data["project_types"])
                messages.success(request, f"Bound {sibling['slug']} to {names}.")
                return HttpResponseRedirect(wizard_url("done", pid))
        return self.get(request, pid, form=form)


class PreviewView(WizardView):
    """JSON: the expanded search template for a sample project (validated server-side)."""

    def get(self, request: HttpRequest) -> JsonResponse:
        """A project of an organization the caller does not administer answers exactly like
        a missing one: 404 with the same body."""
        authorize(request)
        template = request.GET.get("template", "")
        tab = request.GET.get("tab", "configuration")
        try:
            project_id = int(request.GET.get("project", ""))
        except ValueError:
            project_id = 0
        project = (
            Project.objects.select_related("organization", "project_type")
            .filter(pk=project_id, organization__in=installable_organizations(request.user))
            .first()
            if 0 < project_id < 2**63
            else None
        )
        if project is None:
            return JsonResponse({"ok": False, "error": "choose a sample project"}, status=404)
        authorize(request, project.organization)
        return JsonResponse(preview_search_template(template, project, tab))
