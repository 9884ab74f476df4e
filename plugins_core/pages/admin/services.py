"""Admin of third-party services: their settings, write-only credentials and plugins.

Owns ``ThirdPartyServiceAdmin`` with its inlines: ``ServiceApplicationInline`` (the
service's credentials, edited on a form generated from the credential fields of the
manifests of its plugins; no value is ever rendered back, only "set" / "not set", and a
blank field keeps the stored value; a JSON "replace" box when no manifest is known) and
``PluginInline`` (its plugins, whose enabled switch is audited as ``plugin.state``). A
service whose plugins' templates declare settings gets one field per setting
(``ServiceSettingsForm``); settings changes are audited with their old and new values, and
credentials left pointing at a changed host are cleared (``plugins_core.serving.hosts``).
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest
from django.urls import URLPattern
from imbi_plugin_sdk import CredentialField, PluginManifest, ServiceTemplate

from imbi.core import audit
from imbi.core.admin_scoping import OrgScopedAdmin, OrgScopedInline
from imbi.core.models import AuditEvent
from plugins_core import registry
from plugins_core.models import Plugin, ServiceApplication, ThirdPartyService
from plugins_core.pages.admin.site import TestConnectionLink, service_urls
from plugins_core.pages.forms import (
    SecretTextarea,
    add_setting_errors,
    collect_credentials,
    credential_form_fields,
    setting_form_fields,
    stored_status,
)
from plugins_core.provisioning.credentials import apply_credentials, credential_fields_for
from plugins_core.provisioning.lifecycle import record_plugin_state
from plugins_core.provisioning.services import settings_diff
from plugins_core.serving.hosts import clear_stale_credentials, service_host_errors
from plugins_core.serving.resolution import manifest_for


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
            # No ``exclude`` here: it would replace Django's, which also leaves out the
            # read-only fields (the organization, once the row exists), and the form would
            # then require an ``organization`` the page never serves. ``get_fields`` already
            # drops the raw ``settings``.
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
        return service_urls(self.admin_site) + super().get_urls()

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
        request.__dict__["_imbi_settings_diff"] = settings_diff(
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
