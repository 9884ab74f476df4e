"""Admin for plugin data. Credentials are write-only: never rendered back, only "set"."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from imbi.core import audit
from imbi.core.models import AuditEvent

from .models import (
    Plugin,
    ProjectPlugin,
    ProjectTypePlugin,
    ServiceApplication,
    ThirdPartyService,
)


class ServiceApplicationForm(forms.ModelForm):  # type: ignore[type-arg]
    """Credentials as a write-only JSON object; blank keeps what is stored."""

    new_credentials = forms.CharField(
        label="Replace credentials",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off"}),
        help_text='JSON object of names to values, e.g. {"api_token": "..."}. '
        "Stored encrypted and never shown again. Leave blank to keep the stored values.",
    )

    class Meta:
        model = ServiceApplication
        fields = ("service",)

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
        instance = super().save(commit=False)
        new = self.cleaned_data.get("new_credentials")
        if new is not None:
            instance.credentials = new
        if commit:
            instance.save()
        return instance


class ServiceApplicationInline(admin.StackedInline):  # type: ignore[type-arg]
    model = ServiceApplication
    form = ServiceApplicationForm
    fields = ("stored_names", "new_credentials")
    readonly_fields = ("stored_names",)
    can_delete = False
    extra = 0

    @admin.display(description="Stored credentials")
    def stored_names(self, obj: ServiceApplication) -> str:
        if not obj.pk or not obj.credentials:
            return "not set"
        return ", ".join(f"{name}: set" for name in sorted(obj.credentials))


class PluginInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Plugin
    fields = ("slug", "name", "plugin_type", "handler", "enabled")
    extra = 0
    show_change_link = True


@admin.register(ThirdPartyService)
class ThirdPartyServiceAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "vendor", "slug", "organization", "managed_by_manifest")
    list_filter = ("organization", "vendor")
    search_fields = ("name", "slug", "vendor")
    exclude = ("icon",)
    inlines = (ServiceApplicationInline, PluginInline)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        for inline_form in formset.forms:
            if inline_form.cleaned_data.get("new_credentials") is not None:
                audit.record(
                    AuditEvent.Action.CREDENTIALS_SET,
                    actor=request.user,
                    organization=form.instance.organization,
                    detail=f"service {form.instance.slug}",
                )


@admin.register(Plugin)
class PluginAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("slug", "name", "plugin_type", "service", "organization", "enabled")
    list_filter = ("organization", "plugin_type", "enabled")
    search_fields = ("slug", "name", "handler")


class BindingAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("__str__", "tab", "plugin", "default", "search_template")
    list_filter = ("organization", "tab", "default")
    exclude = ("organization",)


admin.site.register(ProjectTypePlugin, BindingAdmin)
admin.site.register(ProjectPlugin, BindingAdmin)
