"""Forms generated from plugin manifests, and the small forms of the install wizard and the
project page.

Owns the mapping from a manifest's schema to Django form fields:

* ``OptionsForm``: one field per ``OptionField`` (string → CharField, integer → IntegerField,
  boolean → BooleanField, choices → ChoiceField, mapping → JSON textarea, secret →
  PasswordInput). ``clean()`` runs ``manifest.validate_options`` and puts each error on its
  field. In *partial* mode (a binding's overrides) a blank field inherits and booleans get an
  "inherit" choice.
* ``CredentialsForm``: one field per ``CredentialField``.

Secrets are write-only everywhere: a credential (secret or not) and a secret option are never
put back into a form, a widget or a help text. The form only learns *which* names are stored
and says "set" / "not set"; a blank field keeps the stored value and a "remove" box clears it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput
from imbi_plugin_sdk import (
    CredentialField,
    OptionField,
    OptionType,
    OptionValidationError,
    PluginManifest,
    ServiceTemplate,
)

from imbi.core.models import Organization, Project, ProjectType
from plugins_core.models import (
    SERVICE_SETTING_KEYS,
    Plugin,
    ThirdPartyService,
    validate_service_settings,
)
from plugins_core.serving.resolution import (
    TEMPLATE_VARIABLES,
    TemplateError,
    validate_search_template,
)

__all__ = [
    "CLEAR_PREFIX",
    "AddBindingForm",
    "BindingForm",
    "ConnectionTestForm",
    "CredentialsForm",
    "OptionsForm",
    "PickPluginForm",
    "ServiceForm",
    "TypeBindingForm",
    "apply_credentials",
    "collect_credentials",
    "collect_options",
    "credential_fields_for",
    "credential_form_fields",
    "option_fields",
    "stored_status",
]

CLEAR_PREFIX = "clear__"
KEEP_HELP = "Leave blank to keep the stored value."


class SafeJSONField(forms.JSONField):
    """``JSONField`` that reports too-deep or NUL-carrying JSON as a field error, not a 500."""

    def to_python(self, value: Any) -> Any:
        try:
            result = super().to_python(value)
        except RecursionError:
            raise forms.ValidationError("This JSON is nested too deeply.") from None
        if "\x00" in json.dumps(result):
            raise forms.ValidationError("JSON cannot contain NUL characters.")
        return result

    def bound_data(self, data: Any, initial: Any) -> Any:
        try:
            return super().bound_data(data, initial)
        except RecursionError:  # re-rendering the rejected input must not fail either
            return InvalidJSONInput(data)


def stored_status(is_set: bool) -> str:
    """How a write-only value is shown: only whether it is stored."""
    return "set" if is_set else "not set"


def _join(*parts: str) -> str:
    return " ".join(part for part in parts if part)


# --------------------------------------------------------------------------- options


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


# --------------------------------------------------------------------------- credentials


def credential_fields_for(manifests: Iterable[PluginManifest]) -> list[CredentialField]:
    """The union of credential fields of several manifests (one service, several plugins).

    A name declared by several manifests keeps its first declaration, required if any
    manifest requires it and secret if any declares it secret.
    """
    by_name: dict[str, CredentialField] = {}
    for manifest in manifests:
        for cred in manifest.credentials:
            first = by_name.get(cred.name)
            if first is None:
                by_name[cred.name] = cred
            else:
                by_name[cred.name] = CredentialField(
                    name=first.name,
                    label=first.label,
                    secret=first.secret or cred.secret,
                    required=first.required or cred.required,
                    multiline=first.multiline or cred.multiline,
                    help=first.help or cred.help,
                )
    return list(by_name.values())


class SecretTextarea(forms.Textarea):
    """A textarea for a multiline secret: like ``PasswordInput(render_value=False)``, it
    never renders a value, not even the one just typed into a form shown again."""

    def format_value(self, value: Any) -> None:
        return None


def credential_form_fields(
    fields: Sequence[CredentialField], stored_names: Iterable[str]
) -> dict[str, forms.Field]:
    """Write-only form fields for credentials: never an initial value, only "set"."""
    stored = set(stored_names)
    out: dict[str, forms.Field] = {}
    for cred in fields:
        is_set = cred.name in stored
        attrs = {"autocomplete": "new-password" if cred.secret else "off", "spellcheck": "false"}
        widget: forms.Widget
        if cred.multiline:
            widget_class = SecretTextarea if cred.secret else forms.Textarea
            widget = widget_class(attrs={**attrs, "rows": 4})
        elif cred.secret:
            widget = forms.PasswordInput(render_value=False, attrs=attrs)
        else:
            widget = forms.TextInput(attrs=attrs)
        required_note = "Required." if cred.required else "Optional."
        out[cred.name] = forms.CharField(
            label=cred.label,
            required=False,
            strip=True,
            widget=widget,
            help_text=_join(
                cred.help,
                required_note,
                f"Currently {stored_status(is_set)}.",
                KEEP_HELP if is_set else "",
            ),
        )
        if is_set:
            out[CLEAR_PREFIX + cred.name] = forms.BooleanField(
                label=f"Remove the stored {cred.label.lower()}", required=False
            )
    return out


def collect_credentials(
    form: forms.BaseForm, fields: Sequence[CredentialField], stored_names: Iterable[str]
) -> dict[str, str | None]:
    """Changes entered on a cleaned ``form``: name → new value, or ``None`` to remove it.

    A required credential that would end up empty is an error on its field.
    """
    stored = set(stored_names)
    cleaned = form.cleaned_data
    changes: dict[str, str | None] = {}
    for cred in fields:
        value = cleaned.get(cred.name) or ""
        cleared = bool(cleaned.get(CLEAR_PREFIX + cred.name))
        if value:
            changes[cred.name] = value
        elif cleared:
            changes[cred.name] = None
        has_value = bool(value) or (cred.name in stored and not cleared)
        if cred.required and not has_value:
            form.add_error(cred.name, "This credential is required.")
    return changes


def credential_rule_errors(
    manifests: Iterable[PluginManifest],
    stored_names: Iterable[str],
    changes: Mapping[str, str | None],
) -> dict[str, str]:
    """Patterns of the credentials entered now, and the manifests' ``together`` groups over
    what will be stored, by credential name. Stored values are never read: a stored name
    counts as present."""
    present = {name: "stored" for name in stored_names}
    for name, value in changes.items():
        if value is None:
            present.pop(name, None)
        else:
            present[name] = value
    errors: dict[str, str] = {}
    for manifest in manifests:
        names = {f.name for f in manifest.credentials}
        try:
            manifest.validate_credentials({k: v for k, v in present.items() if k in names})
        except OptionValidationError as exc:
            for name, message in exc.errors.items():
                entered = changes.get(name) is not None
                if entered or message.startswith("is required together"):
                    errors.setdefault(name, message)
    return errors


def apply_credentials(
    stored: Mapping[str, str], changes: Mapping[str, str | None]
) -> dict[str, str]:
    merged = dict(stored)
    for name, value in changes.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


class CredentialsForm(forms.Form):
    """Credentials on a form generated from credential fields; every value is write-only.

    The form knows only which names are stored (``stored_names``), never their values.
    After ``is_valid()``, ``changes`` maps names to a new value, or to ``None`` to remove it.
    """

    def __init__(
        self,
        fields: Sequence[CredentialField],
        *args: Any,
        stored_names: Iterable[str] = (),
        manifests: Iterable[PluginManifest] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.credential_fields = list(fields)
        self.manifests = list(manifests)
        self.stored_names = set(stored_names)
        self.changes: dict[str, str | None] = {}
        self.fields.update(credential_form_fields(self.credential_fields, self.stored_names))

    def status(self) -> list[tuple[str, str]]:
        """(label, "set"/"not set") for each credential field."""
        return [
            (cred.label, stored_status(cred.name in self.stored_names))
            for cred in self.credential_fields
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self.changes = collect_credentials(self, self.credential_fields, self.stored_names)
        for name, message in credential_rule_errors(
            self.manifests, self.stored_names, self.changes
        ).items():
            self.add_error(name if name in self.fields else None, message)
        return cleaned


# --------------------------------------------------------------------------- install wizard


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


def _check_template(value: str) -> str:
    try:
        validate_search_template(value)
    except TemplateError as exc:
        raise ValidationError(str(exc)) from None
    return value


TEMPLATE_HELP = (
    "Variables: "
    + ", ".join(f"${{{name}}} ({meaning})" for name, meaning in TEMPLATE_VARIABLES.items())
    + ". Use $$ for a literal '$'."
)


class TypeBindingForm(forms.Form):
    """Step 6: bind the plugin to project types, with a live preview of the template."""

    project_types = forms.ModelMultipleChoiceField(
        queryset=ProjectType.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Every project of these types gets the plugin on its tab. "
        "Choose none to bind later.",
    )
    tab = forms.CharField(
        disabled=True, required=False, help_text="A plugin serves the tab of its own type."
    )
    default = forms.BooleanField(required=False, label="Default source for the tab")
    search_template = forms.CharField(max_length=500, required=False, help_text=TEMPLATE_HELP)
    sample_project = forms.ModelChoiceField(
        queryset=Project.objects.none(), required=False, label="Preview for project"
    )

    def __init__(self, *args: Any, organization: Organization, tab: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["project_types"].queryset = (  # type: ignore[attr-defined]
            ProjectType.objects.filter(organization=organization)
        )
        self.fields["sample_project"].queryset = (  # type: ignore[attr-defined]
            Project.objects.filter(organization=organization).select_related("project_type")
        )
        self.fields["tab"].initial = tab
        self.fields["search_template"].widget.attrs.update(
            {"data-template-preview": "1", "class": "vTextField", "spellcheck": "false"}
        )

    def clean_search_template(self) -> str:
        return _check_template(self.cleaned_data.get("search_template", ""))


class SiblingBindingForm(forms.Form):
    """The done page: bind a sibling plugin of the installed template to project types."""

    project_types = forms.ModelMultipleChoiceField(
        queryset=ProjectType.objects.none(), widget=forms.CheckboxSelectMultiple
    )
    default = forms.BooleanField(required=False, initial=True, label="Default source for the tab")
    search_template = forms.CharField(max_length=500, required=False, help_text=TEMPLATE_HELP)

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["project_types"].queryset = (  # type: ignore[attr-defined]
            ProjectType.objects.filter(organization=organization).order_by("name")
        )

    def clean_search_template(self) -> str:
        return _check_template(self.cleaned_data.get("search_template", ""))


class ConnectionTestForm(forms.Form):
    """Step 5: optionally, the project and search template to test with (a plugin that
    reads under a path, such as a parameter store, needs one to check access)."""

    sample_project = forms.ModelChoiceField(
        queryset=Project.objects.none(), required=False, label="Test for project"
    )
    search_template = forms.CharField(max_length=500, required=False, help_text=TEMPLATE_HELP)

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["sample_project"].queryset = (  # type: ignore[attr-defined]
            Project.objects.filter(organization=organization).select_related("project_type")
        )
        self.fields["search_template"].widget.attrs.update(
            {"class": "vTextField", "spellcheck": "false"}
        )

    def clean_search_template(self) -> str:
        return _check_template(self.cleaned_data.get("search_template", ""))


# --------------------------------------------------------------------------- project page


class AddBindingForm(forms.Form):
    """Bind one of the organization's plugins to this project's tab (its type's tab)."""

    plugin = forms.ChoiceField()
    default = forms.BooleanField(required=False, label="Default for the tab")
    search_template = forms.CharField(max_length=500, required=False, help_text=TEMPLATE_HELP)

    def __init__(self, *args: Any, plugins: Iterable[Plugin], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["plugin"].choices = [  # type: ignore[attr-defined]
            (p.slug, f"{p.name or p.slug} ({p.plugin_type})") for p in plugins
        ]

    def clean_search_template(self) -> str:
        return _check_template(self.cleaned_data.get("search_template", ""))


class BindingForm(forms.Form):
    """A project binding's own fields; its option overrides are a separate ``OptionsForm``."""

    default = forms.BooleanField(required=False, label="Default for the tab")
    search_template = forms.CharField(
        max_length=500,
        required=False,
        help_text=TEMPLATE_HELP + " Blank: inherit the project type's template.",
    )

    def clean_search_template(self) -> str:
        return _check_template(self.cleaned_data.get("search_template", ""))
