"""The install wizard's step machine: step order, navigation, permission, the Pipeline.

Owns the steps' order and titles (``STEPS``: plugin → service → credentials → options →
test → bind → finish), ``Pipeline`` (the state store's ``InstallState`` plus what the
choices resolve to: the existing service and plugin the install will use, the settings the
service will have, the credentials a connection test gets), ``authorize`` (every request
re-checks permission: ``imbi.core.access``), ``WizardView`` (the admin context every page
gets) and ``StepBase``: it loads the pipeline of the URL, checks permission, starts over when
the plugin changed mid-flow (``manifest_signature``), sends a step not reachable yet back to
the first unfinished one, and calls the step's ``step_<name>`` method, which the step
modules (``choice``, ``credentials``, ``options``, ``connection``, ``bind``, ``review``)
provide. ``next`` marks a step done and moves on.

Writes no table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views import View
from imbi_plugin_sdk import PluginManifest

from imbi.core.access import administers_any, can_install
from imbi.core.models import Organization
from plugins_core import registry
from plugins_core.models import Plugin, ServiceApplication, ThirdPartyService
from plugins_core.pages.forms import ServiceForm, apply_credentials
from plugins_core.pages.wizard.state import InstallState, State, manifest_signature
from plugins_core.serving.hosts import operator_hosts_changed, service_manifests


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    title: str


STEPS: tuple[Step, ...] = (
    Step("plugin", "Choose a plugin"),
    Step("service", "Service"),
    Step("credentials", "Credentials"),
    Step("options", "Options"),
    Step("test", "Test connection"),
    Step("bind", "Bind to project types"),
    Step("finish", "Done"),
)
STEP_NAMES = tuple(step.name for step in STEPS)


def authorize(request: HttpRequest, organization: Organization | None = None) -> None:
    """An operator of ``organization`` (of any organization if None): ``imbi.core.access``."""
    user = request.user
    allowed = administers_any(user) if organization is None else can_install(user, organization)
    if not allowed:
        raise PermissionDenied


def submitted(request: HttpRequest) -> Any:
    """The submitted data on POST (even when empty: a form without fields), else unbound."""
    return request.POST if request.method == "POST" else None


def wizard_url(name: str, *args: Any) -> str:
    return reverse(f"admin:plugins_core_install_{name}", args=args)


class Pipeline(InstallState):
    """One install in progress (``InstallState``) and what its choices resolve to."""

    def __init__(self, request: HttpRequest, pid: str, state: State) -> None:
        super().__init__(request, pid, state)
        # target_service per (choice, template vendor), for this request only: a Pipeline is
        # built per request (``start``/``load``), so a stale row never outlives the request.
        self._targets: dict[tuple[Any, ...], ThirdPartyService | None] = {}

    # -- navigation --

    def current_entry(self) -> registry.Entry | None:
        """The entry if it is still loaded and unchanged since the wizard started."""
        entry = registry.current().get(self.entry_point)
        if entry is None or not entry.ok or manifest_signature(entry) != self.state["signature"]:
            return None
        return entry

    def reachable(self, step: str) -> bool:
        index = STEP_NAMES.index(step)
        return all(self.completed(name) for name in STEP_NAMES[:index])

    # -- service --

    def target_service(self, manifest: PluginManifest) -> ThirdPartyService | None:
        """The existing service the install will use, if any (never written here).

        Memoized per instance, keyed on the inputs: the summary asks several times."""
        choice = self.service_choice
        template = manifest.service_template
        key = (
            self.state["organization_id"],
            choice.get("mode"),
            choice.get("service_id"),
            template.vendor if template else None,
        )
        if key not in self._targets:
            self._targets[key] = self._find_target_service(manifest)
        return self._targets[key]

    def _find_target_service(self, manifest: PluginManifest) -> ThirdPartyService | None:
        choice = self.service_choice
        org_id = self.state["organization_id"]
        if choice.get("mode") == ServiceForm.EXISTING and choice.get("service_id"):
            return ThirdPartyService.objects.filter(
                pk=int(choice["service_id"]), organization_id=org_id
            ).first()
        if choice.get("mode") == ServiceForm.TEMPLATE and manifest.service_template:
            return ThirdPartyService.objects.filter(
                organization_id=org_id, vendor=manifest.service_template.vendor, identity=""
            ).first()
        return None

    def target_plugin(self, manifest: PluginManifest) -> Plugin | None:
        service = self.target_service(manifest)
        if service is None:
            return None
        return Plugin.objects.filter(service=service, handler=self.entry_point).first()

    def service_settings(self, manifest: PluginManifest) -> dict[str, Any]:
        """The settings the service will have: current (or template) ones, then entered."""
        service = self.target_service(manifest)
        base: dict[str, Any] = dict(service.settings) if service else {}
        template = manifest.service_template
        if (
            service is None
            and self.service_choice.get("mode") == ServiceForm.TEMPLATE
            and (template is not None)
        ):
            base = dict(template.settings)
            if template.base_url:
                base["base_url"] = template.base_url
        for name, value in (self.service_choice.get("settings") or {}).items():
            if value:
                base[name] = value
            else:
                base.pop(name, None)
        return base

    def stored_credentials(self, manifest: PluginManifest) -> dict[str, str]:
        """The service's stored credentials, or none when this wizard moves an
        operator-chosen host: they were meant for the old host (``plugins_core.serving.hosts``)."""
        service = self.target_service(manifest)
        if service is None:
            return {}
        manifests = [*service_manifests(service), manifest]
        if operator_hosts_changed(service.settings, self.service_settings(manifest), manifests):
            return {}
        app = ServiceApplication.objects.filter(service=service).first()
        return dict(app.credentials) if app and isinstance(app.credentials, dict) else {}

    def credentials(self, manifest: PluginManifest) -> dict[str, str]:
        """Stored credentials with this wizard's changes applied (used by the test only)."""
        return apply_credentials(self.stored_credentials(manifest), self.credential_changes())


class WizardView(View):
    """Base of the wizard's views: admin context, permission, pipeline loading."""

    admin_site: AdminSite | None = None

    def context(self, request: HttpRequest, **extra: Any) -> dict[str, Any]:
        site = self.admin_site
        base = site.each_context(request) if site is not None else {}
        return {**base, "steps": STEPS, **extra}


class StepBase(WizardView):
    """The step machine of steps 2 to 7: ``dispatch`` loads the pipeline, re-checks permission
    and the plugin, and calls ``step_<name>``; ``show`` renders a step, ``next`` moves on."""

    pipeline: Pipeline
    organization: Organization
    entry: registry.Entry
    manifest: PluginManifest
    step: str

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        pid, step = kwargs["pid"], kwargs["step"]
        if step not in STEP_NAMES[1:]:
            raise Http404
        pipeline = Pipeline.load(request, pid)
        if pipeline is None:
            messages.warning(request, "That install was finished or abandoned; start again.")
            return HttpResponseRedirect(wizard_url("start"))
        organization = pipeline.organization()
        authorize(request, organization)
        entry = pipeline.current_entry()
        if entry is None:
            now = registry.current().get(pipeline.entry_point)
            what = (
                f"is now {now.status.value} at version {now.version or '?'}"
                if now
                else "is no longer installed"
            )
            pipeline.discard()
            messages.error(
                request,
                f"The plugin {pipeline.entry_point} changed while you were "
                f"installing it ({what}); nothing was written. Start again.",
            )
            return HttpResponseRedirect(wizard_url("start"))
        if not pipeline.reachable(step):
            first = next(s for s in STEP_NAMES if not pipeline.completed(s))
            return HttpResponseRedirect(wizard_url("step", pid, first))
        self.pipeline, self.organization, self.entry = pipeline, organization, entry
        assert entry.manifest is not None
        self.manifest = entry.manifest
        self.step = step
        response: HttpResponse = getattr(self, f"step_{step}")(request)
        return response

    # -- helpers --

    def show(self, request: HttpRequest, template: str, **extra: Any) -> HttpResponse:
        index = STEP_NAMES.index(self.step)
        return render(
            request,
            f"admin/plugins_core/install/{template}",
            self.context(
                request,
                title=f"Install {self.manifest.name}: {STEPS[index].title}",
                pipeline=self.pipeline,
                entry=self.entry,
                manifest=self.manifest,
                organization=self.organization,
                current=self.step,
                previous=STEP_NAMES[index - 1] if index > 1 else None,
                **extra,
            ),
        )

    def next(self, step: str | None = None) -> HttpResponse:
        self.pipeline.mark_done(self.step)
        self.pipeline.save()
        following = step or STEP_NAMES[STEP_NAMES.index(self.step) + 1]
        return HttpResponseRedirect(wizard_url("step", self.pipeline.id, following))
