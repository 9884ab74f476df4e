"""Admin page of plugin distributions: the desired state, each node's status, nodes behind,
and install / upgrade / remove (superusers only; every change through
``plugins_core.distributions.desired``, so the same checks, atomicity and audit as the CLI and API).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from plugins_core.distributions import desired as distributions
from plugins_core.distributions import nodes
from plugins_core.models import InstalledDistribution, Plugin, binding_impact


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class WheelsField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data: Any, initial: Any = None) -> Any:
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)]


class DistributionUploadForm(forms.Form):
    wheels = WheelsField(
        label="Wheel(s)",
        help_text="The plugin's wheel, plus the wheels of its dependencies (a wheelhouse).",
    )
    upgrade = forms.BooleanField(
        required=False,
        label="Replace the installed version (upgrade or roll back)",
    )

    def clean_wheels(self) -> list[distributions.Wheel]:
        out = []
        for upload in self.cleaned_data["wheels"]:
            if upload.size > distributions.MAX_WHEEL_BYTES:
                raise forms.ValidationError(f"{upload.name} is larger than the limit.")
            try:
                out.append(distributions.wheel(upload.name, upload.read()))
            except distributions.DistributionError as exc:
                raise forms.ValidationError(exc.detail) from None
        return out


@admin.register(InstalledDistribution)
class InstalledDistributionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """One page instead of Django's change list (rows change only through the service)."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return distributions.can_manage(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return distributions.can_manage(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.page), name="plugins_core_installeddistribution_changelist"),
            path(
                "remove/",
                wrap(self.remove),
                name="plugins_core_installeddistribution_remove",
            ),
        ]

    def page(self, request: HttpRequest) -> HttpResponse:
        if not distributions.can_manage(request.user):
            raise PermissionDenied("Only superusers manage plugin distributions.")
        form = DistributionUploadForm()
        if request.method == "POST":
            form = DistributionUploadForm(request.POST, request.FILES)
            if form.is_valid():
                try:
                    wheels = form.cleaned_data["wheels"]
                    row = distributions.install(
                        wheels,
                        actor=request.user,
                        upgrade=form.cleaned_data["upgrade"],
                        source="admin upload: " + ", ".join(w.filename for w in wheels),
                    )
                except distributions.DistributionError as exc:
                    form.add_error(None, f"{exc.detail} ({exc.code}); nothing was changed.")
                else:
                    messages.success(
                        request,
                        f"{row.name} {row.version} is installed (generation {row.generation});"
                        " every node switches to it without a restart.",
                    )
                    return HttpResponseRedirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "title": "Plugin distributions",
            "opts": self.model._meta,
            "report": nodes.report(),
            "form": form,
            "remove_url": reverse("admin:plugins_core_installeddistribution_remove"),
        }
        return TemplateResponse(request, "admin/plugins_core/distributions.html", context)

    def remove(self, request: HttpRequest) -> HttpResponse:
        """Remove a distribution everywhere: GET ``?name=`` (and a POST without
        ``confirm=yes``) shows what it reaches (its entry points, and the installed plugins,
        projects and bindings using them); the POST with ``confirm=yes`` removes it."""
        back = reverse("admin:plugins_core_installeddistribution_changelist")
        if not distributions.can_manage(request.user):
            raise PermissionDenied("Only superusers manage plugin distributions.")
        source = request.POST if request.method == "POST" else request.GET
        name = str(source.get("name", ""))[:200]
        row = InstalledDistribution.objects.filter(name=name).first()
        if request.method != "POST" or request.POST.get("confirm") != "yes":
            if row is None:
                messages.error(request, f"{name} is not installed." if name else "Choose one.")
                return HttpResponseRedirect(back)
            return self._confirm(request, row, back)
        try:
            generation = distributions.remove(name, actor=request.user)
        except distributions.DistributionError as exc:
            messages.error(request, exc.detail)
        else:
            messages.success(request, f"{name} removed (generation {generation}).")
        return HttpResponseRedirect(back)

    def _confirm(self, request: HttpRequest, row: InstalledDistribution, back: str) -> HttpResponse:
        entry_points = sorted(row.entries) if isinstance(row.entries, dict) else []
        plugins = Plugin.objects.filter(handler__in=entry_points)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Remove {row.name}",
            "opts": self.model._meta,
            "question": f"Remove the distribution {row.name} {row.version} from every node? "
            "Its entry points:",
            "items": entry_points or ["(none)"],
            "consequence": "Every installed plugin that uses them stops answering in every "
            "organization (its rows, options and bindings are kept, and serve again once a "
            "version is installed).",
            "impact": binding_impact(plugins),
            "action": request.path,
            "hidden": [("name", row.name)],
            "confirm_label": f"Yes, remove {row.name}",
            "cancel_url": back,
        }
        return TemplateResponse(request, "admin/plugins_core/confirm.html", context)
