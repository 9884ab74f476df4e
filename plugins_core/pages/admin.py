"""Admin for plugin data, and the routes of the install wizard and the registry page.

Owns the ``ModelAdmin`` classes of services, plugins and bindings, and wires
``plugins_core.pages.wizard`` (Install a plugin) and ``plugins_core.pages.views.RegistryView`` into
the
admin site under ``/admin/plugins_core/plugin/``.

Secrets are write-only here:
- a service's credentials are edited on a form generated from the credential fields of the
  manifests of its plugins; no value is ever rendered back, only "set" / "not set", and a
  blank field keeps the stored value (a JSON "replace" box when no manifest is known);
- a plugin's options are edited on a form generated from its manifest, secret options as
  ``PasswordInput(render_value=False)``; without a loaded manifest only option names show.

Scoping and auditing come from ``imbi.core.admin_scoping``: staff who are not superusers see
and change only rows of organizations they administer, and every add, change and delete is
audited (service settings with their old and new values, plugin options by name only, the
enabled switch of the service page's plugin inline as ``plugin.state``).
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import URLPattern, path, reverse
from imbi_plugin_sdk import CredentialField, PluginManifest, ServiceTemplate

from imbi.core import audit
from imbi.core.admin_scoping import OrgScopedAdmin, OrgScopedInline
from imbi.core.models import AuditEvent
from plugins_core import registry
from plugins_core.isolation import capabilities, host
from plugins_core.isolation.modes import IN_PROCESS, ISOLATED, effective_mode
from plugins_core.models import (
    ExecutionMode,
    Plugin,
    ProjectPlugin,
    ProjectTypePlugin,
    ServiceApplication,
    ThirdPartyService,
)
from plugins_core.pages import views, wizard
from plugins_core.pages.forms import (
    SecretTextarea,
    add_setting_errors,
    apply_credentials,
    collect_credentials,
    collect_options,
    credential_fields_for,
    credential_form_fields,
    option_fields,
    setting_form_fields,
    stored_status,
)
from plugins_core.provisioning.bindings import (
    binding_errors,
    inherited_type_options,
    keep_masked,
    mask_options,
)
from plugins_core.provisioning.lifecycle import (
    approve_permissions,
    record_execution_mode,
    record_plugin_state,
    set_plugin_enabled,
)
from plugins_core.serving import health
from plugins_core.serving.hosts import clear_stale_credentials, service_host_errors
from plugins_core.serving.resolution import manifest_for, permissions_state, unapproved_permissions

# --------------------------------------------------------------------------- credentials


class ServiceApplicationForm(forms.ModelForm):  # type: ignore[type-arg]
    """Fallback when no manifest is known: a write-only JSON object; blank keeps it."""

    new_credentials = forms.CharField(
        label="Replace credentials",
        required=False,
        widget=SecretTextarea(attrs={"rows": 4, "autocomplete": "off"}),
        help_text='JSON object of names to values, e.g. {"api_token": "..."}. '
        "Stored encrypted and never shown again. Leave blank to keep the stored values.",
    )

    class Meta:
        model = ServiceApplication
        fields = ("service",)

    credentials_changed = False

    def clean_new_credentials(self) -> dict[str, str] | None:
        raw = self.cleaned_data.get("new_credentials", "").strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            raise forms.ValidationError("Enter a JSON object.") from None
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise forms.ValidationError("Enter a JSON object whose values are strings.")
        return value

    def save(self, commit: bool = True) -> ServiceApplication:
        instance: ServiceApplication = super().save(commit=False)
        new = self.cleaned_data.get("new_credentials")
        if new is not None:
            instance.credentials = new
            self.credentials_changed = True
        if commit:
            instance.save()
        return instance


class ManifestCredentialsForm(forms.ModelForm):  # type: ignore[type-arg]
    """Credentials from the manifests' schema; subclasses declare the fields (see below)."""

    credential_fields: list[CredentialField] = []
    credentials_changed = False

    class Meta:
        model = ServiceApplication
        fields = ()

    def _stored_names(self) -> set[str]:
        if self.instance.pk and isinstance(self.instance.credentials, dict):
            return set(self.instance.credentials)
        return set()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self.changes = collect_credentials(self, self.credential_fields, self._stored_names())
        return cleaned

    def has_changed(self) -> bool:
        return bool(getattr(self, "changes", None)) or super().has_changed()

    def save(self, commit: bool = True) -> ServiceApplication:
        instance: ServiceApplication = super().save(commit=False)
        stored = dict(instance.credentials) if isinstance(instance.credentials, dict) else {}
        merged = apply_credentials(stored, self.changes)
        self.credentials_changed = merged != stored
        instance.credentials = merged
        if commit:
            instance.save()
        return instance


def service_manifests(service: ThirdPartyService | None) -> list[PluginManifest]:
    if service is None or service.pk is None:
        return []
    snapshot = registry.current()
    found = []
    for plugin in Plugin.objects.filter(service=service).order_by("slug"):
        manifest = manifest_for(plugin, snapshot)
        if manifest is not None:
            found.append(manifest)
    return found


def _reentered(inline_form: Any) -> set[str]:
    """Credential names entered (not removed) on a credentials inline form in this save."""
    if not getattr(inline_form, "credentials_changed", False):
        return set()
    changes = getattr(inline_form, "changes", None)
    if isinstance(changes, dict):
        return {name for name, value in changes.items() if value is not None}
    new = getattr(inline_form, "cleaned_data", {}).get("new_credentials")
    return set(new) if isinstance(new, dict) else set()


class ServiceApplicationInline(OrgScopedInline, admin.StackedInline):  # type: ignore[type-arg]
    model = ServiceApplication
    form = ServiceApplicationForm
    readonly_fields = ("stored_names",)
    can_delete = False
    extra = 0
    max_num = 1
    verbose_name = verbose_name_plural = "Credentials"

    def _credential_fields(self, obj: ThirdPartyService | None) -> list[CredentialField]:
        return credential_fields_for(service_manifests(obj))

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        fields = self._credential_fields(obj)
        if fields:
            app = ServiceApplication.objects.filter(service=obj).first() if obj else None
            stored = set(app.credentials) if app and isinstance(app.credentials, dict) else set()
            attrs: dict[str, Any] = {
                **credential_form_fields(fields, stored),
                "credential_fields": fields,
                "__module__": __name__,
            }
            kwargs["form"] = type("ServiceCredentialsForm", (ManifestCredentialsForm,), attrs)
            kwargs["fields"] = list(credential_form_fields(fields, stored))
            self.extra = 1 if app is None else 0
        else:
            kwargs["form"] = ServiceApplicationForm
            kwargs["fields"] = ["new_credentials"]
            self.extra = 0
        return super().get_formset(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = self._credential_fields(obj)
        if not fields:
            return ["stored_names", "new_credentials"]
        app = ServiceApplication.objects.filter(service=obj).first() if obj else None
        stored = set(app.credentials) if app and isinstance(app.credentials, dict) else set()
        return ["stored_names", *credential_form_fields(fields, stored)]

    @admin.display(description="Stored credentials")
    def stored_names(self, obj: ServiceApplication) -> str:
        if not obj or not obj.pk or not obj.credentials:
            return "not set"
        return ", ".join(f"{name}: {stored_status(True)}" for name in sorted(obj.credentials))


class PluginInline(OrgScopedInline, admin.TabularInline):  # type: ignore[type-arg]
    model = Plugin
    fields = ("slug", "name", "plugin_type", "handler", "enabled")
    readonly_fields = ("handler",)
    extra = 0
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # plugins are added by the install wizard or the plugin add page


def _settings_diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    """``name: 'old' -> 'new'`` for each changed setting (settings are never secret)."""
    changes = []
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            was = repr(old[name]) if name in old else "unset"
            now = repr(new[name]) if name in new else "unset"
            changes.append(f"{name}: {was} -> {now}")
    return "settings " + "; ".join(changes) if changes else ""


class ServiceSettingsForm(forms.ModelForm):  # type: ignore[type-arg]
    """A service whose plugins' templates declare its settings: one field per declared
    setting (choices, patterns, help) instead of the raw JSON; undeclared keys are kept."""

    template: ServiceTemplate

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        names = [f.name for f in self.template.setting_fields]
        current = dict(self.instance.settings or {}) if self.instance.pk else {}
        entered = {n: str(cleaned.get(n) or "").strip() for n in names}
        merged = {k: v for k, v in current.items() if k not in names}
        merged.update({k: v for k, v in entered.items() if v})
        if add_setting_errors(self, self.template, merged):
            # Hosts are checked here so each error lands on its own setting's field; the
            # model's clean() checks the same again (plugins_core.serving.hosts).
            host_problems = service_host_errors(self.instance, merged)
            for name, message in sorted(host_problems.items()):
                self.add_error(name if name in self.fields else None, f"{name}: {message}")
            if not host_problems:
                self.instance.settings = merged
        return cleaned

    def _update_errors(self, errors: ValidationError) -> None:
        # ``settings`` is not a field of this form: show the model's errors on it at the top.
        if hasattr(errors, "error_dict") and "settings" in errors.error_dict:
            moved = errors.error_dict.pop("settings")
            errors.error_dict.setdefault(NON_FIELD_ERRORS, []).extend(moved)
        super()._update_errors(errors)  # type: ignore[misc]


def service_template(service: ThirdPartyService | None) -> ServiceTemplate | None:
    """The first template with declared settings among the service's plugins' manifests."""
    for manifest in service_manifests(service):
        template = manifest.service_template
        if template is not None and template.setting_fields:
            return template
    return None


class TestConnectionLink:
    """Admin mixin: the change page's "Test connection" button posts to ``test_url_name``."""

    test_url_name: str

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> Any:
        extra = {
            "test_url": reverse(f"admin:{self.test_url_name}", args=[object_id])
            if object_id.isdigit()
            else "",
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra)  # type: ignore[misc]


@admin.register(ThirdPartyService)
class ThirdPartyServiceAdmin(TestConnectionLink, OrgScopedAdmin):
    test_url_name = "plugins_core_thirdpartyservice_test"
    audit_action = AuditEvent.Action.SERVICE_CHANGE
    list_display = (
        "name",
        "vendor",
        "slug",
        "organization",
        "managed_by_manifest",
        "credentials_status",
    )
    list_filter = ("organization", "vendor")
    search_fields = ("name", "slug", "vendor")
    exclude = ("icon",)
    inlines = (ServiceApplicationInline, PluginInline)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        template = service_template(obj)
        if template is not None:
            initial = dict(obj.settings or {})
            attrs: dict[str, Any] = {
                **setting_form_fields(template, initial=initial),
                "template": template,
                "__module__": __name__,
            }
            kwargs["form"] = type("ServiceManifestForm", (ServiceSettingsForm,), attrs)
            kwargs["exclude"] = ["icon", "settings"]
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_fields(request, obj))
        template = service_template(obj)
        if template is not None:
            fields = [f for f in fields if f != "settings"]
            fields += [f.name for f in template.setting_fields if f.name not in fields]
        return fields

    class Media:
        css = {"all": ("plugins_core/admin.css",)}

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "<int:object_id>/test-connection/",
                self.admin_site.admin_view(views.ConnectionTestView.as_view(scope="service")),
                name="plugins_core_thirdpartyservice_test",
            ),
        ]
        return custom + super().get_urls()

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # One EXISTS per row in the same query, not one query per changelist row; never
        # select_related("application"): loading it would decrypt the credentials.
        queryset: QuerySet[Any] = super().get_queryset(request)
        applications = ServiceApplication.objects.filter(service=OuterRef("pk"))
        annotated: QuerySet[Any] = queryset.annotate(has_credentials=Exists(applications))
        return annotated

    @admin.display(description="Credentials")
    def credentials_status(self, obj: ThirdPartyService) -> str:
        has = getattr(obj, "has_credentials", None)
        if has is None:  # an instance not loaded through get_queryset
            has = ServiceApplication.objects.filter(service=obj).exists()
        return stored_status(has)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        old = (
            ThirdPartyService.objects.filter(pk=obj.pk).values_list("settings", flat=True).first()
            if change
            else None
        )
        # Remember where the credentials were meant to go (plugins_core.serving.hosts).
        form.hosts_before = dict(old) if isinstance(old, dict) else {}
        super().save_model(request, obj, form, change)
        request.__dict__["_imbi_settings_diff"] = _settings_diff(
            old if isinstance(old, dict) else {},
            obj.settings if isinstance(obj.settings, dict) else {},
        )

    def audit_detail(self, request: HttpRequest, obj: Any) -> str:
        return str(request.__dict__.get("_imbi_settings_diff", ""))

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if change:
            kept: set[str] = set()
            for formset in formsets:
                for inline_form in formset.forms:
                    kept |= _reentered(inline_form)
            clear_stale_credentials(
                form.instance, getattr(form, "hosts_before", {}), kept=kept, actor=request.user
            )

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is Plugin:
            return self._save_plugins(request, formset)
        super().save_formset(request, form, formset, change)
        for inline_form in formset.forms:
            if getattr(inline_form, "credentials_changed", False):
                audit.record(
                    AuditEvent.Action.CREDENTIALS_SET,
                    actor=request.user,
                    organization=form.instance.organization,
                    detail=f"service {form.instance.slug}",
                )

    def _save_plugins(self, request: HttpRequest, formset: Any) -> None:
        """The plugin inline: enable/disable is ``plugin.state`` as on every other surface;
        other edits and deletions are ``plugin.change``."""
        switched = {
            f.instance.pk
            for f in formset.initial_forms
            if f.instance.pk and "enabled" in f.changed_data
        }
        formset.save()
        for plugin in formset.deleted_objects:
            audit.record(
                AuditEvent.Action.PLUGIN_CHANGE,
                actor=request.user,
                organization=plugin.organization,
                plugin_slug=plugin.slug,
                detail=f"deleted plugin '{plugin.slug}' (service page)",
            )
        for plugin, fields in formset.changed_objects:
            if plugin.pk in switched:
                record_plugin_state(plugin, request.user)
            others = [name for name in fields if name != "enabled"]
            if others:
                audit.record(
                    AuditEvent.Action.PLUGIN_CHANGE,
                    actor=request.user,
                    organization=plugin.organization,
                    plugin_slug=plugin.slug,
                    detail=f"changed plugin '{plugin.slug}' (service page): {', '.join(others)}",
                )


# --------------------------------------------------------------------------- plugins


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
    list_display = (
        "slug",
        "name",
        "plugin_type",
        "service",
        "organization",
        "enabled",
        "handler_status",
        "health_badge",
        "runs",
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
        mode = effective_mode(obj.execution_mode, registry.current().get(obj.handler))
        return "in-process" if mode == IN_PROCESS else "isolated (sandboxed runner)"

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
        changed = sum(approve_permissions(p, request.user) for p in queryset)
        messages.success(request, f"Approved the permissions of {changed} plugin(s).")

    @admin.action(description="Disable selected plugins", permissions=["change"])
    def disable_plugins(self, request: HttpRequest, queryset: QuerySet[Plugin]) -> None:
        changed = sum(set_plugin_enabled(p, False, request.user) for p in queryset)
        messages.success(request, f"Disabled {changed} plugin(s).")

    def get_urls(self) -> list[URLPattern]:
        site = self.admin_site
        wrap = site.admin_view
        custom = [
            path(
                "registry/",
                wrap(views.RegistryView.as_view(admin_site=site)),
                name="plugins_core_registry",
            ),
            path(
                "<int:object_id>/test-connection/",
                wrap(views.ConnectionTestView.as_view(scope="plugin")),
                name="plugins_core_plugin_test",
            ),
            path(
                "<int:plugin_id>/state/",
                wrap(views.PluginStateView.as_view()),
                name="plugins_core_plugin_state",
            ),
            path(
                "install/",
                wrap(wizard.StartView.as_view(admin_site=site)),
                name="plugins_core_install_start",
            ),
            path(
                "install/preview/",
                wrap(wizard.PreviewView.as_view(admin_site=site)),
                name="plugins_core_install_preview",
            ),
            path(
                "install/<str:pid>/cancel/",
                wrap(wizard.CancelView.as_view(admin_site=site)),
                name="plugins_core_install_cancel",
            ),
            path(
                "install/<str:pid>/done/",
                wrap(wizard.DoneView.as_view(admin_site=site)),
                name="plugins_core_install_done",
            ),
            path(
                "install/<str:pid>/<slug:step>/",
                wrap(wizard.StepView.as_view(admin_site=site)),
                name="plugins_core_install_step",
            ),
        ]
        return custom + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        extra = {
            "registry_url": reverse("admin:plugins_core_registry"),
            "install_url": reverse("admin:plugins_core_install_start"),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra)


# --------------------------------------------------------------------------- bindings


class BindingAdminForm(forms.ModelForm):  # type: ignore[type-arg]
    """Checks exactly what the binding services check (``bindings.binding_errors``).

    Secret-typed option values are write-only here too: rendered as ``SECRET_MASK`` (never
    in a hidden initial either), and a mask submitted unchanged keeps the stored value.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields.get("options")
        plugin = getattr(self.instance, "plugin", None) if self.instance.plugin_id else None
        if field is not None and plugin is not None:
            field.show_hidden_initial = False
            prepare = field.prepare_value
            field.prepare_value = lambda value: prepare(  # type: ignore[method-assign]
                mask_options(plugin, value) if isinstance(value, dict) else value
            )

    def clean_options(self) -> Any:
        options = self.cleaned_data.get("options")
        if self.instance.pk and self.instance.plugin_id:
            return keep_masked(self.instance.plugin, options, dict(self.instance.options))
        return options

    def _post_clean(self) -> None:
        # The parent builds the instance from the form and runs full_clean().
        super()._post_clean()  # type: ignore[misc]
        if self.instance.plugin_id and not self.errors:
            for name, message in binding_errors(self.instance, full_clean=False).items():
                field = name.split(".")[0]
                label = f"{name.split('.', 1)[1]}: " if "." in name else ""
                self.add_error(field if field in self.fields else None, f"{label}{message}")


class BindingOptionsForm(BindingAdminForm):
    """A binding whose plugin's manifest is loaded: one field per option (inherit when
    blank; secrets write-only) instead of the raw JSON; subclasses declare the fields."""

    manifest: PluginManifest
    inherited: dict[str, Any]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        options = collect_options(
            self,
            self.manifest,
            stored=dict(self.instance.options or {}),
            inherited=self.inherited,
            partial=True,
        )
        if options is not None:
            self.instance.options = options
        return cleaned


def binding_option_context(obj: Any) -> tuple[PluginManifest | None, dict[str, Any]]:
    """The manifest of a saved binding's plugin and what its options inherit."""
    if obj is None or not obj.pk or not obj.plugin_id:
        return None, {}
    manifest = manifest_for(obj.plugin)
    inherited = dict(obj.plugin.options or {})
    if isinstance(obj, ProjectPlugin):
        inherited.update(inherited_type_options(obj.project, obj.plugin))
    return manifest, inherited


class BindingAdmin(OrgScopedAdmin):
    form = BindingAdminForm
    audit_action = AuditEvent.Action.BINDING_CHANGE
    list_display = ("__str__", "tab", "plugin", "default", "search_template")
    list_filter = ("organization", "tab", "default")
    exclude = ("organization",)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        manifest, inherited = binding_option_context(obj)
        if manifest is not None:
            attrs: dict[str, Any] = {
                **option_fields(
                    manifest, stored=dict(obj.options or {}), inherited=inherited, partial=True
                ),
                "manifest": manifest,
                "inherited": inherited,
                "__module__": __name__,
            }
            kwargs["form"] = type("BindingManifestForm", (BindingOptionsForm,), attrs)
            kwargs["exclude"] = ["organization", "options"]
        return super().get_form(request, obj, change=change, **kwargs)

    def audit_fields(self, obj: Any) -> dict[str, Any]:
        project = obj.project if isinstance(obj, ProjectPlugin) and obj.pk else None
        return {"project": project, "plugin_slug": obj.plugin.slug}

    def audit_detail(self, request: HttpRequest, obj: Any) -> str:
        return f"({obj.tab} tab, admin)"


admin.site.register(ProjectTypePlugin, BindingAdmin)
admin.site.register(ProjectPlugin, BindingAdmin)

# Registered by importing them: the supply-chain admin (indexes, install records) and the
# plugin distributions page.
from plugins_core.distributions import admin as distribution_admin  # noqa: E402, F401
from plugins_core.supply import admin as supply_admin  # noqa: E402, F401
