"""Admin of plugins: options, execution mode, enable/disable and permission approvals.

Owns ``PluginAdmin``: a plugin's options are edited on a form generated from its manifest
(``PluginOptionsForm``; secret options as ``PasswordInput(render_value=False)``; without a
loaded manifest only option names show), ``in_process`` is refused for a distribution the
operator does not trust (``PluginModeForm``), and the change list shows status, health,
where it runs and the circuit breaker. Actions enable, disable and approve permissions
through ``plugins_core.provisioning.lifecycle``; options changes are audited by name only.
The registry page and the install wizard are routed here (``site.plugin_urls``).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import pluralize
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import URLPattern, reverse
from imbi_plugin_sdk import PluginManifest

from imbi.core.admin_scoping import OrgScopedAdmin
from imbi.core.models import AuditEvent
from plugins_core import registry
from plugins_core.isolation import capabilities, host
from plugins_core.isolation.modes import IN_PROCESS, ISOLATED, effective_mode
from plugins_core.models import ExecutionMode, Plugin, binding_impact
from plugins_core.pages.admin.site import TestConnectionLink, plugin_urls
from plugins_core.pages.forms import collect_options, option_fields
from plugins_core.provisioning.approvals import approve_plugin
from plugins_core.provisioning.lifecycle import (
    record_execution_mode,
    record_plugin_state,
    set_plugin_enabled,
)
from plugins_core.serving import health
from plugins_core.serving.resolution import manifest_for, permissions_state, unapproved_permissions


class PluginModeForm(forms.ModelForm):  # type: ignore[type-arg]
    """Refuses ``in_process`` for a distribution the operator does not trust."""

    class Meta:
        model = Plugin
        fields = (
            "organization",
            "service",
            "slug",
            "name",
            "plugin_type",
            "handler",
            "enabled",
            "execution_mode",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "execution_mode" in self.fields:  # left out of a post: keep what the row has
            self.fields["execution_mode"].required = False

    def clean_execution_mode(self) -> str:
        mode = str(
            self.cleaned_data.get("execution_mode")
            or self.instance.execution_mode
            or ExecutionMode.AUTO
        )
        handler = self.cleaned_data.get("handler") or self.instance.handler
        entry = registry.current().get(handler) if handler else None
        if mode == ExecutionMode.IN_PROCESS and effective_mode(mode, entry) != IN_PROCESS:
            distribution = entry.distribution if entry else handler
            if entry is not None and entry.trust:  # a trusted name with unverified bytes
                raise forms.ValidationError(f"{distribution} can only run isolated: {entry.trust}")
            raise forms.ValidationError(
                f"{distribution} is not a trusted distribution, so it can only run isolated. "
                "An operator can trust it with IMBI_TRUSTED_PLUGIN_DISTRIBUTIONS."
            )
        return mode


class PluginOptionsForm(PluginModeForm):
    """A plugin's options on fields generated from its manifest; subclasses add them."""

    manifest: PluginManifest
    changed_options: list[str] = []

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.errors:
            stored = dict(self.instance.options or {})
            options = collect_options(self, self.manifest, stored=stored)
            if options is not None:
                self.instance.options = options
                self.changed_options = sorted(
                    name
                    for name in set(stored) | set(options)
                    if stored.get(name) != options.get(name)
                )
        return cleaned


def _plugin_status(plugin: Plugin) -> tuple[str, str]:
    entry = registry.current().get(plugin.handler)
    if entry is None:
        return "not installed", f"handler '{plugin.handler}' is not installed on this server"
    extra = unapproved_permissions(plugin, entry.manifest) if entry.manifest else []
    if entry.ok and extra:
        return "permissions pending approval", "asks for " + ", ".join(extra)
    refused = capabilities.entry_refusal(
        entry, isolated=effective_mode(plugin.execution_mode, entry) == ISOLATED
    )
    if refused:
        return "cannot run here", refused
    return entry.status.label, entry.reason


@admin.register(Plugin)
class PluginAdmin(TestConnectionLink, OrgScopedAdmin):
    test_url_name = "plugins_core_plugin_test"
    audit_action = AuditEvent.Action.PLUGIN_CHANGE
    # What an operator scans for first (status, health, runs) right after the name, so a
    # 1366 px window shows them without scrolling sideways.
    list_display = (
        "slug",
        "handler_status",
        "health_badge",
        "runs",
        "enabled",
        "name",
        "plugin_type",
        "service",
        "organization",
    )
    list_filter = ("organization", "plugin_type", "enabled", "execution_mode")
    form = PluginModeForm
    search_fields = ("slug", "name", "handler")
    actions = ("enable_plugins", "disable_plugins", "approve_permissions")
    readonly_fields = ("handler_status", "option_names", "health_badge", "runs", "circuit")

    class Media:
        css = {"all": ("plugins_core/admin.css",)}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return health.with_health(super().get_queryset(request))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is not None:  # changing these would re-target bindings and credentials
            return (
                "handler",
                "plugin_type",
                "organization",
                "handler_status",
                "option_names",
                "health_badge",
                "runs",
                "circuit",
                "permissions",
            )
        return ("handler_status", "option_names", "health_badge", "runs", "circuit")

    @admin.display(description="Permissions")
    def permissions(self, obj: Plugin) -> str:
        if obj is None or obj.pk is None:
            return "-"
        state = permissions_state(obj, manifest_for(obj))
        parts = [
            f"{label}: {', '.join(state[key]) or 'none'}"
            for key, label in (("declared", "declared"), ("approved", "approved"))
        ]
        if state["pending"]:
            parts.append(f"pending approval: {', '.join(state['pending'])}")
        return "; ".join(parts)

    @admin.display(description="Health")
    def health_badge(self, obj: Plugin) -> str:
        if obj is None or obj.pk is None:
            return "-"
        found = health.badge(obj)
        return render_to_string(
            "plugins_core/badge.html",
            {"status": found.status, "reason": found.reason, "tested_at": found.tested_at},
        )

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        manifest = manifest_for(obj) if obj is not None else None
        if manifest is not None:
            attrs: dict[str, Any] = {
                **option_fields(manifest, stored=obj.options or {}),
                "manifest": manifest,
                "__module__": __name__,
            }
            kwargs["form"] = type("PluginManifestForm", (PluginOptionsForm,), attrs)
        # without a loaded manifest, get_fields() leaves the raw options out entirely
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = [
            "organization",
            "service",
            "slug",
            "name",
            "plugin_type",
            "handler",
            "enabled",
            "handler_status",
            "execution_mode",
            "runs",
            "circuit",
        ]
        if obj is not None:
            fields += ["health_badge", "permissions"]
        manifest = manifest_for(obj) if obj is not None else None
        if manifest is not None:
            fields += list(option_fields(manifest, stored=obj.options or {}))
        else:
            fields.append("option_names")
        return fields

    @admin.display(description="Status")
    def handler_status(self, obj: Plugin) -> str:
        if obj is None or obj.pk is None:
            return "-"
        label, reason = _plugin_status(obj)
        if not obj.enabled:
            label = f"disabled ({label})"
        return f"{label}: {reason}" if reason else label

    @admin.display(description="Runs")
    def runs(self, obj: Plugin) -> str:
        if obj is None or obj.pk is None:
            return "-"
        entry = registry.current().get(obj.handler)
        mode = effective_mode(obj.execution_mode, entry)
        runs = "in-process" if mode == IN_PROCESS else "isolated (sandboxed runner)"
        return f"{runs}; {entry.trust}" if entry is not None and entry.trust else runs

    @admin.display(description="Circuit breaker")
    def circuit(self, obj: Plugin) -> str:
        if obj is None or obj.pk is None:
            return "-"
        state = host.breaker().state(host.plugin_breaker_key(obj.pk))
        if state.state == "open":
            return f"open: calls refused for {state.retry_after:.0f}s more"
        return state.state.replace("_", "-")

    @admin.display(description="Options")
    def option_names(self, obj: Plugin) -> str:
        if obj is None or not obj.options:
            return "(none)"
        return "The handler is not loaded, so options cannot be edited. Stored: " + ", ".join(
            sorted(obj.options)
        )

    def save_model(self, request: HttpRequest, obj: Plugin, form: Any, change: bool) -> None:
        state_changed = change and "enabled" in form.changed_data
        mode_changed = change and "execution_mode" in form.changed_data
        super().save_model(request, obj, form, change)
        if state_changed:
            record_plugin_state(obj, request.user)
        if mode_changed:
            record_execution_mode(obj, form.initial.get("execution_mode", ""), request.user)
        request.__dict__["_imbi_changed_options"] = list(getattr(form, "changed_options", []))

    def audit_fields(self, obj: Any) -> dict[str, Any]:
        return {"plugin_slug": obj.slug}

    def audit_detail(self, request: HttpRequest, obj: Any) -> str:
        names = request.__dict__.get("_imbi_changed_options") or []
        return f"options changed: {', '.join(names)}" if names else ""

    @admin.action(description="Enable selected plugins", permissions=["change"])
    def enable_plugins(self, request: HttpRequest, queryset: QuerySet[Plugin]) -> None:
        changed = sum(set_plugin_enabled(p, True, request.user) for p in queryset)
        messages.success(request, f"Enabled {changed} plugin(s).")

    @admin.action(
        description="Approve the permissions the installed versions ask for",
        permissions=["change"],
    )
    def approve_permissions(self, request: HttpRequest, queryset: QuerySet[Plugin]) -> None:
        changed = sum(approve_plugin(p, request.user) for p in queryset)
        messages.success(request, f"Approved the permissions of {changed} plugin(s).")

    @admin.action(description="Disable selected plugins", permissions=["change"])
    def disable_plugins(self, request: HttpRequest, queryset: QuerySet[Plugin]) -> Any:
        """Confirmed first, like Django's "delete selected": the page says how many
        projects and bindings the selected plugins serve; its form disables them."""
        if request.POST.get("confirm") != "yes":
            chosen = list(queryset.select_related("organization").order_by("slug"))
            return TemplateResponse(
                request,
                "admin/plugins_core/confirm.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Disable plugins",
                    "opts": self.model._meta,
                    "question": f"Disable {len(chosen)} plugin{pluralize(len(chosen))}?",
                    "items": [f"{p.slug} in {p.organization.slug}" for p in chosen],
                    "consequence": "Their tabs stop answering for every project below until "
                    "they are enabled again; bindings, options and credentials are kept.",
                    "impact": binding_impact(queryset),
                    "action": request.get_full_path(),
                    "hidden": [
                        ("action", "disable_plugins"),
                        *((ACTION_CHECKBOX_NAME, str(p.pk)) for p in chosen),
                    ],
                    "confirm_label": "Yes, disable them",
                    "cancel_url": request.get_full_path(),
                },
            )
        changed = sum(set_plugin_enabled(p, False, request.user) for p in queryset)
        messages.success(request, f"Disabled {changed} plugin(s).")
        return None

    def get_urls(self) -> list[URLPattern]:
        return plugin_urls(self.admin_site) + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        extra = {
            "registry_url": reverse("admin:plugins_core_registry"),
            "install_url": reverse("admin:plugins_core_install_start"),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra)
