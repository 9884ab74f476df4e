"""Admin of bindings: project-type and project bindings of a plugin.

Owns ``BindingAdmin`` (registered for ``ProjectTypePlugin`` and ``ProjectPlugin``) and its
forms, which check exactly what the binding services check
(``plugins_core.provisioning.bindings.binding_errors``). A binding whose plugin's manifest
is loaded edits its option overrides one field per option (blank inherits); secret values
are write-only (shown masked, a mask submitted unchanged keeps the stored value).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from imbi_plugin_sdk import PluginManifest

from imbi.core.admin_scoping import OrgScopedAdmin
from imbi.core.models import AuditEvent
from plugins_core.models import ProjectPlugin, ProjectTypePlugin
from plugins_core.pages.forms import collect_options, option_fields
from plugins_core.provisioning.bindings import (
    binding_errors,
    inherited_type_options,
    keep_masked,
    mask_options,
)
from plugins_core.serving.resolution import manifest_for


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
