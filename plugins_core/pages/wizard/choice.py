"""The install wizard's first two steps: choose a plugin (and organization), then a service.

Owns ``StartView`` (step 1: the catalog's cards, ``plugins_core.pages.catalog``, the entry
points that cannot be installed, and the form that starts a ``Pipeline``), ``catalog`` (what
step 1 offers, from one registry snapshot) and ``ServiceStep`` (step 2: use the template's
service, an existing one or a new one, with settings checked against the hosts of the
service's plugins, this one included: ``plugins_core.serving.hosts``).

Writes no table: the choice is kept in the pipeline until the finish.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render

from imbi.core.access import installable_organizations
from plugins_core import registry
from plugins_core.models import ThirdPartyService
from plugins_core.pages.catalog import Card, cards, offered_types
from plugins_core.pages.forms import PickPluginForm, ServiceForm, setting_names
from plugins_core.pages.wizard.pipeline import (
    Pipeline,
    StepBase,
    WizardView,
    authorize,
    submitted,
    wizard_url,
)
from plugins_core.provisioning.install import policy_refusal
from plugins_core.serving.hosts import service_host_errors


def catalog(request: HttpRequest) -> tuple[list[Card], list[Card], list[registry.Entry]]:
    """What step 1 offers, from one registry snapshot: the cards (by plugin name, with where
    they are installed among the caller's organizations), the same cards by entry point name
    (the order of the form's choices) and the entry points that cannot be installed."""
    snapshot = registry.current()
    shown = cards(installable_organizations(request.user).values_list("pk", flat=True), snapshot)
    items = sorted(shown, key=lambda card: card.entry.name)
    failed = sorted(snapshot.failed(), key=lambda e: e.name)
    return shown, items, failed


class StartView(WizardView):
    """Step 1: pick a plugin and an organization."""

    def _form(self, request: HttpRequest, items: list[Card]) -> PickPluginForm:
        return PickPluginForm(
            submitted(request),
            entry_points=[(item.entry.name, item.manifest.name) for item in items],
            organizations=installable_organizations(request.user),
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        authorize(request)
        shown, items, failed = catalog(request)
        form = self._form(request, items)
        wanted = request.GET.get("entry_point", "")
        if any(item.entry.name == wanted for item in items):
            form.initial["entry_point"] = wanted  # from the catalog's "Install" button
        return self.show(request, form, shown, items, failed)

    def post(self, request: HttpRequest) -> HttpResponse:
        authorize(request)
        shown, items, failed = catalog(request)
        form = self._form(request, items)
        if not form.is_valid():
            return self.show(request, form, shown, items, failed)
        organization = form.cleaned_data["organization"]
        authorize(request, organization)
        entry = registry.current().get(form.cleaned_data["entry_point"])
        if entry is None or not entry.ok:
            form.add_error("entry_point", "This plugin is no longer loaded.")
            return self.show(request, form, shown, items, failed)
        refusal = policy_refusal(organization, [entry])
        if refusal:  # the organization's publisher policy applies where the plugin lands
            form.add_error("entry_point", f"publisher_not_verified: {refusal}")
            return self.show(request, form, shown, items, failed)
        pipeline = Pipeline.start(request, entry, organization)
        return HttpResponseRedirect(wizard_url("step", pipeline.id, "service"))

    def show(
        self,
        request: HttpRequest,
        form: PickPluginForm,
        shown: list[Card],
        items: list[Card],
        failed: list[registry.Entry],
    ) -> HttpResponse:
        return render(
            request,
            "admin/plugins_core/install/plugin.html",
            self.context(
                request,
                title="Install a plugin",
                form=form,
                items=items,
                failed=failed,
                current="plugin",
                selected=form["entry_point"].value(),
                cards=shown,
                types=offered_types(shown),
            ),
        )


class ServiceStep(StepBase):
    """Step 2: the service the plugin is installed on, and its settings."""

    def step_service(self, request: HttpRequest) -> HttpResponse:
        services = ThirdPartyService.objects.filter(organization=self.organization)
        choice = self.pipeline.service_choice
        has_template = self.manifest.service_template is not None
        initial: dict[str, Any] = {
            "mode": choice.get("mode")
            or (ServiceForm.TEMPLATE if has_template else ServiceForm.NEW)
        }
        if choice:
            initial.update(
                service=choice.get("service_id"),
                **choice.get("new", {}),
                **(choice.get("settings") or {}),
            )
        else:
            template = self.manifest.service_template
            settings = dict(template.settings) if template else {}
            if template and template.base_url:
                settings["base_url"] = template.base_url
            existing = self.pipeline.target_service(self.manifest) if template else None
            if template and existing is None:
                existing = services.filter(vendor=template.vendor, identity="").first()
            if existing is not None:
                settings = {**settings, **existing.settings}
            names = setting_names(self.manifest.service_template)
            initial.update({k: v for k, v in settings.items() if k in names})
        form = ServiceForm(
            submitted(request),
            initial=initial,
            services=services,
            has_template=has_template,
            template=self.manifest.service_template,
        )
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            previous = self.pipeline.state["service"]
            self.pipeline.state["service"] = {
                "mode": data["mode"],
                "service_id": data["service"].pk if data.get("service") else None,
                "new": {k: data.get(k) or "" for k in ("name", "vendor", "slug")},
                "settings": {
                    name: str(data.get(name) or "").strip() for name in form.setting_names
                },
            }
            errors = self._host_errors()
            if not errors:
                if self.pipeline.state["service"] != previous:
                    self.pipeline.changed()  # else the last connection test still holds
                return self.next()
            self.pipeline.state["service"] = previous
            for key, message in errors.items():
                form.add_error(key if key in form.fields else None, f"{key}: {message}")
        template_service = None
        if self.manifest.service_template is not None:
            template_service = services.filter(
                vendor=self.manifest.service_template.vendor, identity=""
            ).first()
        return self.show(request, "service.html", form=form, template_service=template_service)

    def _host_errors(self) -> dict[str, str]:
        """The chosen service's settings against its plugins' hosts, this one included."""
        service = self.pipeline.target_service(self.manifest) or ThirdPartyService(
            organization=self.organization
        )
        settings = self.pipeline.service_settings(self.manifest)
        return service_host_errors(service, settings, extra=[self.manifest])
