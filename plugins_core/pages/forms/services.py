"""The install wizard's first steps: which plugin for which organization, and which service.

Owns ``PickPluginForm`` (step 1) and ``ServiceForm`` (step 2: install from the manifest's
template, reuse a service or create one, with the template's declared settings as fields),
and ``setting_names`` (what a service form asks for). The setting fields themselves come
from ``options``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from imbi_plugin_sdk import ServiceTemplate

from imbi.core.models import Organization
from plugins_core.models import SERVICE_SETTING_KEYS, ThirdPartyService, validate_service_settings
from plugins_core.pages.forms.options import add_setting_errors, setting_form_fields


class PickPluginForm(forms.Form):
    """Step 1: which plugin (registry entry point) and for which organization."""

    entry_point = forms.ChoiceField(label="Plugin", widget=forms.RadioSelect)
    organization = forms.ModelChoiceField(queryset=Organization.objects.none())

    def __init__(
        self, *args: Any, entry_points: Sequence[tuple[str, str]], organizations: Any, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["entry_point"].choices = list(entry_points)  # type: ignore[attr-defined]
        field: Any = self.fields["organization"]
        field.queryset = organizations
        only = list(organizations[:2])
        self.single_organization = only[0] if len(only) == 1 else None
        if self.single_organization is not None:  # no "---------" to pick from
            field.empty_label = None
            field.initial = self.single_organization.pk
            field.widget = forms.HiddenInput()


class ServiceForm(forms.Form):
    """Step 2: install from the manifest's template, reuse a service, or create one."""

    TEMPLATE, EXISTING, NEW = "template", "existing", "new"

    mode = forms.ChoiceField(
        label="Service",
        widget=forms.RadioSelect,
        choices=[
            (TEMPLATE, "Install from the plugin's template (one click)"),
            (EXISTING, "Use an existing service"),
            (NEW, "Create a new service"),
        ],
    )
    service = forms.ModelChoiceField(
        queryset=ThirdPartyService.objects.none(), required=False, label="Existing service"
    )
    name = forms.CharField(max_length=200, required=False, label="New service name")
    vendor = forms.SlugField(max_length=64, required=False, label="New service vendor")
    slug = forms.SlugField(max_length=64, required=False, label="New service slug")
    region = forms.CharField(
        max_length=100, required=False, help_text="Service setting 'region' (blank: none)."
    )
    base_url = forms.URLField(
        max_length=500,
        required=False,
        label="Base URL",
        assume_scheme="https",
        help_text="Service setting 'base_url': an endpoint override (blank: the vendor's default).",
    )

    SETTINGS = ("region", "base_url")

    def __init__(
        self,
        *args: Any,
        services: Any,
        has_template: bool,
        template: ServiceTemplate | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["service"].queryset = services  # type: ignore[attr-defined]
        if not has_template:
            mode: Any = self.fields["mode"]
            mode.choices = [c for c in mode.choices if c[0] != self.TEMPLATE]
        self.template = template
        self.setting_names = setting_names(template)
        self.fields.update(setting_form_fields(template, initial=self.initial))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        mode = cleaned.get("mode")
        if mode == self.EXISTING and not cleaned.get("service"):
            self.add_error("service", "Choose a service.")
        if mode == self.NEW:
            for name in ("name", "vendor", "slug"):
                if not cleaned.get(name):
                    self.add_error(name, "Required for a new service.")
        if not add_setting_errors(self, self.template, self.settings()):
            return cleaned
        try:
            validate_service_settings(self.settings())
        except ValidationError as exc:
            self.add_error(None, exc)
        return cleaned

    def settings(self) -> dict[str, str]:
        """The entered settings (blank ones are left out, so they are unset)."""
        data = getattr(self, "cleaned_data", {})
        return {
            name: str(data[name]).strip()
            for name in self.setting_names
            if name in SERVICE_SETTING_KEYS and str(data.get(name) or "").strip()
        }


def setting_names(template: ServiceTemplate | None) -> tuple[str, ...]:
    """The settings a service form asks for: the template's declared ones, else the
    generic region and base URL."""
    declared = tuple(f.name for f in template.setting_fields) if template else ()
    return declared or ServiceForm.SETTINGS
