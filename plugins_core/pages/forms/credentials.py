"""Credential fields generated from the manifests of a service's plugins, and
``CredentialsForm``.

Owns the write-only credential form: one field per ``CredentialField`` that never carries
an initial value (secret or not), a "remove" box per stored name, ``collect_credentials``
(the changes entered: name → new value, or ``None`` to remove) and ``credential_rule_errors``
(patterns and ``together`` groups, without reading stored values). The form only learns
*which* names are stored and says "set" / "not set"; a blank field keeps the stored value.

Which fields a service has and how changes merge are provisioning rules
(``plugins_core.provisioning.credentials``); they are re-exported here for the pages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django import forms
from imbi_plugin_sdk import CredentialField, OptionValidationError, PluginManifest

from plugins_core.pages.forms.fields import CLEAR_PREFIX, KEEP_HELP, _join, stored_status
from plugins_core.provisioning.credentials import apply_credentials, credential_fields_for

__all__ = [
    "CredentialsForm",
    "SecretTextarea",
    "apply_credentials",
    "collect_credentials",
    "credential_fields_for",
    "credential_form_fields",
    "credential_rule_errors",
]


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
