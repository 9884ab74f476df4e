"""Option and setting fields generated from a plugin manifest, and ``OptionsForm``.

Owns the mapping from a manifest's ``OptionField`` schema to Django form fields (string →
CharField, integer → IntegerField, boolean → BooleanField, choices → ChoiceField, mapping →
JSON textarea, secret → PasswordInput that never renders a value), ``collect_options`` (runs
``manifest.validate_options`` and puts each error on its field) and ``OptionsForm``. In
*partial* mode (a binding's overrides) a blank field inherits and booleans get an "inherit"
choice. A service template's declared settings use the same fields (``setting_form_fields``,
``add_setting_errors``); settings are never secret.

Used by the admin (plugin, binding and service forms), the wizard and the project pages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django import forms
from imbi_plugin_sdk import (
    OptionField,
    OptionType,
    OptionValidationError,
    PluginManifest,
    ServiceTemplate,
)

from plugins_core.pages.forms.fields import (
    CLEAR_PREFIX,
    KEEP_HELP,
    SafeJSONField,
    _join,
    stored_status,
)


def _choice_label(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value) if value != "" else "(empty)"


def _option_field(
    option: OptionField, *, partial: bool, stored: Mapping[str, Any], inherited: Mapping[str, Any]
) -> forms.Field:
    """A form field for one option; secret values are never used as initial data."""
    name = option.name
    required_note = "Required." if option.required and option.default is None else ""
    if option.type is OptionType.SECRET:
        is_set = bool(stored.get(name)) or (partial and bool(inherited.get(name)))
        return forms.CharField(
            label=option.label,
            required=False,
            strip=False,
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
            help_text=_join(
                option.help, required_note, f"Currently {stored_status(is_set)}.", KEEP_HELP
            ),
        )
    default_note = ""
    if option.default is not None and option.type is not OptionType.MAPPING:
        default_note = f"Default: {_choice_label(option.default)}."
    if partial and name in inherited:
        default_note = f"Inherited: {_shown(inherited[name])}."
    help_text = _join(
        option.help, required_note, default_note, "Leave blank to inherit." if partial else ""
    )
    initial = stored.get(name)
    field: forms.Field
    if option.choices:
        blank = "(inherit)" if partial else "(default)"
        choices = [("", blank)] + [(str(c), _choice_label(c)) for c in option.choices]
        field = forms.ChoiceField(label=option.label, required=False, choices=choices)
        initial = None if initial is None else str(initial)
    elif option.type is OptionType.INTEGER:
        field = forms.IntegerField(label=option.label, required=False)
    elif option.type is OptionType.BOOLEAN:
        if partial:
            field = forms.TypedChoiceField(
                label=option.label,
                required=False,
                choices=[("", "(inherit)"), ("true", "yes"), ("false", "no")],
            )
            initial = None if initial is None else ("true" if initial else "false")
        else:
            field = forms.BooleanField(label=option.label, required=False)
            if initial is None:
                initial = option.default
    elif option.type is OptionType.MAPPING:
        field = SafeJSONField(
            label=option.label,
            required=False,
            widget=forms.Textarea(attrs={"rows": 4, "class": "vLargeTextField"}),
        )
        help_text = _join(help_text, 'A JSON object of strings, e.g. {"KEY": "value"}.')
    else:
        field = forms.CharField(label=option.label, required=False, max_length=2000)
    field.help_text = help_text
    field.initial = initial
    return field


def _shown(value: object) -> str:
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return _choice_label(value)


def option_fields(
    manifest: PluginManifest,
    *,
    stored: Mapping[str, Any],
    inherited: Mapping[str, Any] | None = None,
    partial: bool = False,
) -> dict[str, forms.Field]:
    """Form fields for a manifest's options (plus a "remove" box per stored secret)."""
    fields: dict[str, forms.Field] = {}
    for option in manifest.options:
        fields[option.name] = _option_field(
            option, partial=partial, stored=stored, inherited=inherited or {}
        )
        if option.type is OptionType.SECRET and stored.get(option.name):
            fields[CLEAR_PREFIX + option.name] = forms.BooleanField(
                label=f"Remove the stored {option.label.lower()}", required=False
            )
    return fields


def collect_options(
    form: forms.BaseForm,
    manifest: PluginManifest,
    *,
    stored: Mapping[str, Any],
    inherited: Mapping[str, Any] | None = None,
    partial: bool = False,
) -> dict[str, object] | None:
    """Validate the option fields of a cleaned ``form`` with ``manifest.validate_options``.

    Returns the values to save at this level (only the options entered, or kept for
    secrets, coerced), or ``None`` after putting every error on its field.
    """
    cleaned = form.cleaned_data
    raw: dict[str, object] = {}
    for option in manifest.options:
        name = option.name
        value = cleaned.get(name)
        if option.type is OptionType.SECRET:
            if cleaned.get(CLEAR_PREFIX + name):
                continue
            if value:
                raw[name] = value
            elif stored.get(name):
                raw[name] = stored[name]
            continue
        if option.type is OptionType.BOOLEAN and not partial:
            raw[name] = bool(value)
            continue
        if value is None or value == "":
            continue
        raw[name] = value
    merged = {**(inherited or {}), **raw} if partial else raw
    try:
        validated = manifest.validate_options(merged)
    except OptionValidationError as exc:
        for name, message in sorted(exc.errors.items()):
            target = name if name in form.fields else None
            form.add_error(target, message if target else f"{name}: {message}")
        return None
    return {name: validated[name] for name in raw}


class OptionsForm(forms.Form):
    """Options of one plugin, generated from its manifest.

    ``stored``: the values saved at this level (plugin, or one binding). ``inherited``: in
    partial mode, what this level overrides (plugin options merged with the type binding's),
    used to validate the merged result. After ``is_valid()``, ``options`` holds the values to
    save at this level.
    """

    def __init__(
        self,
        manifest: PluginManifest,
        *args: Any,
        stored: Mapping[str, Any] | None = None,
        inherited: Mapping[str, Any] | None = None,
        partial: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.manifest = manifest
        self.stored = dict(stored or {})
        self.inherited = dict(inherited or {})
        self.partial = partial
        self.options: dict[str, object] = {}
        self.fields.update(
            option_fields(manifest, stored=self.stored, inherited=self.inherited, partial=partial)
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.errors:
            options = collect_options(
                self,
                self.manifest,
                stored=self.stored,
                inherited=self.inherited,
                partial=self.partial,
            )
            if options is not None:
                self.options = options
        return cleaned


def setting_form_fields(
    template: ServiceTemplate | None, *, initial: Mapping[str, Any]
) -> dict[str, forms.Field]:
    """Form fields for a template's declared settings (choices, patterns, help), like the
    option fields of a manifest. Settings are never secret."""
    fields: dict[str, forms.Field] = {}
    for setting in template.setting_fields if template else ():
        field = _option_field(setting, partial=False, stored=initial, inherited={})
        field.label = setting.label
        if setting.choices:
            field.choices = [  # type: ignore[attr-defined]
                (str(c), _choice_label(c)) for c in setting.choices
            ]
        fields[setting.name] = field
    return fields


def add_setting_errors(
    form: forms.BaseForm, template: ServiceTemplate | None, settings: Mapping[str, Any]
) -> bool:
    """Check ``settings`` against the template's declared fields; errors go on their form
    fields. True when they pass."""
    if template is None:
        return True
    try:
        template.validate_settings(settings)
    except OptionValidationError as exc:
        for name, message in sorted(exc.errors.items()):
            form.add_error(name if name in form.fields else None, f"{name}: {message}")
        return False
    return True
