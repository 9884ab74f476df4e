"""Forms generated from manifests: field types, validation through the manifest, and secrets
that are write-only. ``Secretive`` (a handler with every option type and secret credentials)
and ``use_handler`` are shared with the admin and view tests."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from django import forms
from imbi_plugin_sdk import (
    ConfigKey,
    ConfigurationPlugin,
    ConfigValue,
    ConfigWrite,
    ConnectionResult,
    CredentialField,
    OptionField,
    OptionType,
    PluginManifest,
    PluginType,
)

from plugins_core import registry
from plugins_core.pages.forms import (
    CredentialsForm,
    OptionsForm,
    SafeJSONField,
    apply_credentials,
    credential_fields_for,
)

SIGNING_KEY = "signing-key-value-3f9a1c"
PASSWORD = "password-value-77b2e0"
PRIVATE_KEY = "-----BEGIN KEY----- private-value-c0ffee"


class Secretive(ConfigurationPlugin):
    """Every option type, a secret option and secret credentials."""

    manifest = PluginManifest(
        slug="secretive",
        name="Secretive",
        description="For form tests.",
        version="1.0.0",
        api_version="1.0",
        plugin_type=PluginType.CONFIGURATION,
        publisher="Tests",
        options=(
            OptionField(name="endpoint", label="Endpoint", required=True),
            OptionField(name="retries", label="Retries", type=OptionType.INTEGER, default=3),
            OptionField(name="verbose", label="Verbose", type=OptionType.BOOLEAN, default=False),
            OptionField(name="region", label="Region", choices=("eu", "us"), default="eu"),
            OptionField(name="headers", label="Headers", type=OptionType.MAPPING, default={}),
            OptionField(name="signing_key", label="Signing key", type=OptionType.SECRET),
        ),
        credentials=(
            CredentialField(name="username", label="Username", secret=False),
            CredentialField(name="password", label="Password"),
            CredentialField(
                name="private_key", label="Private key", multiline=True, required=False
            ),
        ),
    )

    def test_connection(self) -> ConnectionResult:
        return ConnectionResult.success("fine")

    def list_keys(self) -> list[ConfigKey]:
        return []

    def get_values(self, keys: Sequence[str] | None = None) -> list[ConfigValue]:
        return []

    def set_value(self, key: str, value: ConfigWrite) -> ConfigKey:
        return ConfigKey(key=key)

    def delete_key(self, key: str) -> None:
        return None


def use_handler(monkeypatch: pytest.MonkeyPatch, name: str, handler: type) -> None:
    """Make ``registry.current()`` also offer ``handler`` as entry point ``name``."""
    snapshot = registry.current()
    entry = registry.Entry(
        name=name,
        target=f"tests:{handler.__name__}",
        distribution="imbi-tests",
        version="1.0.0",
        status=registry.Status.LOADED,
        handler=handler,
        manifest=handler.manifest,
    )  # type: ignore[attr-defined]
    fake = registry.Snapshot(
        generation=snapshot.generation, entries={**snapshot.entries, name: entry}
    )
    monkeypatch.setattr(registry, "current", lambda: fake)


MANIFEST = Secretive.manifest


def test_option_types_map_to_form_fields() -> None:
    form = OptionsForm(MANIFEST)
    kinds = {name: type(field) for name, field in form.fields.items()}
    assert kinds == {
        "endpoint": forms.CharField,
        "retries": forms.IntegerField,
        "verbose": forms.BooleanField,
        "region": forms.ChoiceField,
        "headers": SafeJSONField,
        "signing_key": forms.CharField,
    }
    assert isinstance(form.fields["signing_key"].widget, forms.PasswordInput)
    assert form.fields["signing_key"].widget.render_value is False
    assert isinstance(form.fields["headers"].widget, forms.Textarea)
    assert [c[0] for c in form.fields["region"].choices] == ["", "eu", "us"]  # type: ignore[attr-defined]


def test_options_are_validated_by_the_manifest() -> None:
    form = OptionsForm(MANIFEST, {"endpoint": "", "retries": "2", "headers": '["x"]'})
    assert not form.is_valid()
    assert form.errors["endpoint"] == ["is required"]
    assert "mapping of strings" in form.errors["headers"][0]
    form = OptionsForm(
        MANIFEST,
        {
            "endpoint": "https://x",
            "retries": "2",
            "verbose": "on",
            "region": "us",
            "headers": '{"A": "b"}',
            "signing_key": SIGNING_KEY,
        },
    )
    assert form.is_valid(), form.errors
    assert form.options == {
        "endpoint": "https://x",
        "retries": 2,
        "verbose": True,
        "region": "us",
        "headers": {"A": "b"},
        "signing_key": SIGNING_KEY,
    }


def test_stored_options_prefill_but_a_secret_never_renders() -> None:
    stored = {"endpoint": "https://x", "retries": 5, "signing_key": SIGNING_KEY}
    form = OptionsForm(MANIFEST, stored=stored)
    html = form.as_p()
    assert SIGNING_KEY not in html and "https://x" in html
    assert "Currently set." in form.fields["signing_key"].help_text
    # blank keeps the stored secret; the remove box clears it
    kept = OptionsForm(MANIFEST, {"endpoint": "https://x"}, stored=stored)
    assert kept.is_valid() and kept.options["signing_key"] == SIGNING_KEY
    cleared = OptionsForm(
        MANIFEST, {"endpoint": "https://x", "clear__signing_key": "on"}, stored=stored
    )
    assert cleared.is_valid() and "signing_key" not in cleared.options


def test_partial_options_inherit_and_validate_the_merge() -> None:
    inherited = {"endpoint": "https://base", "retries": 4}
    form = OptionsForm(
        MANIFEST, {"retries": "", "verbose": "true"}, inherited=inherited, partial=True
    )
    assert isinstance(form.fields["verbose"], forms.TypedChoiceField)
    assert "Inherited: 4." in form.fields["retries"].help_text
    assert form.is_valid(), form.errors
    assert form.options == {"verbose": True}
    bad = OptionsForm(MANIFEST, {"region": "mars"}, inherited=inherited, partial=True)
    assert not bad.is_valid() and "region" in bad.errors


def test_credentials_are_write_only() -> None:
    form = CredentialsForm(MANIFEST.credentials, stored_names={"username", "password"})
    html = form.as_p()
    assert 'type="password"' in html and "<textarea" in html
    assert "Currently set." in form.fields["password"].help_text
    assert "Currently not set." in form.fields["private_key"].help_text
    assert form.status() == [("Username", "set"), ("Password", "set"), ("Private key", "not set")]
    # blank keeps; a remove box clears; a required one cannot be cleared
    keep = CredentialsForm(MANIFEST.credentials, {"password": PASSWORD}, stored_names={"username"})
    assert keep.is_valid(), keep.errors
    assert keep.changes == {"password": PASSWORD}
    assert apply_credentials({"username": "u", "old": "x"}, keep.changes) == {
        "username": "u",
        "old": "x",
        "password": PASSWORD,
    }
    clear = CredentialsForm(
        MANIFEST.credentials, {"clear__username": "on"}, stored_names={"username", "password"}
    )
    assert not clear.is_valid() and clear.errors["username"]
    missing = CredentialsForm(MANIFEST.credentials, {})
    assert not missing.is_valid() and set(missing.errors) == {"username", "password"}
    # a rendered bound form never shows what was typed into a secret field
    bound = CredentialsForm(
        MANIFEST.credentials, {"password": PASSWORD, "private_key": PRIVATE_KEY}
    )
    assert not bound.is_valid()
    assert PASSWORD not in bound.as_p() and PRIVATE_KEY not in bound.as_p()


def test_credential_fields_of_several_manifests_are_merged() -> None:
    other = PluginManifest(
        slug="other",
        name="Other",
        description="",
        version="1.0.0",
        api_version="1.0",
        plugin_type=PluginType.LOGS,
        credentials=(
            CredentialField(name="username", label="User", secret=True, required=False),
            CredentialField(name="token", label="Token"),
        ),
    )
    merged = {f.name: f for f in credential_fields_for([MANIFEST, other])}
    assert list(merged) == ["username", "password", "private_key", "token"]
    assert merged["username"].secret and merged["username"].required
