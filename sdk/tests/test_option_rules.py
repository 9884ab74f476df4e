"""Option and credential rules a manifest declares: ``pattern``, ``min``/``max``, and
``together`` groups (both or neither); errors name the field and never quote the value."""

from __future__ import annotations

import pytest
from imbi_plugin_sdk import (
    CredentialField,
    ManifestError,
    OptionField,
    OptionType,
    OptionValidationError,
    PluginManifest,
    PluginType,
    ServiceTemplate,
)


def manifest(**extra: object) -> PluginManifest:
    return PluginManifest(
        slug="rules",
        name="Rules",
        description="",
        version="1.0.0",
        api_version="1.0",
        plugin_type=PluginType.CONFIGURATION,
        options=(
            OptionField(name="repo", label="Repo", pattern=r"\w+/\w+", pattern_help="owner/repo"),
            OptionField(name="size", label="Size", type=OptionType.INTEGER, min=1, max=10),
            OptionField(name="code", label="Code", min=2, max=4),
        ),
        credentials=(
            CredentialField(name="key_id", label="Key", required=False, pattern=r"AK[A-Z]{4}"),
            CredentialField(name="secret", label="Secret", required=False),
        ),
        together=(("key_id", "secret"),),
        **extra,  # type: ignore[arg-type]
    )


def errors(call: object, *args: object) -> dict[str, str]:
    with pytest.raises(OptionValidationError) as caught:
        call(*args)  # type: ignore[operator]
    return dict(caught.value.errors)


def test_pattern_and_bounds() -> None:
    m = manifest()
    assert m.validate_options({"repo": "acme/api", "size": "3", "code": "abc"})["size"] == 3
    assert errors(m.validate_options, {"repo": "not a repo"}) == {
        "repo": "must look like owner/repo"
    }
    assert errors(m.validate_options, {"size": 0}) == {"size": "must be at least 1"}
    assert errors(m.validate_options, {"size": 11}) == {"size": "must be at most 10"}
    assert errors(m.validate_options, {"code": "a"}) == {"code": "must be at least 2 characters"}
    assert errors(m.validate_options, {"code": "abcde"}) == {"code": "must be at most 4 characters"}
    assert m.validate_options({"repo": ""})["repo"] == ""  # empty is "not given"


def test_together_is_both_or_neither_and_patterns_never_echo() -> None:
    m = manifest()
    assert m.validate_credentials({}) == {}
    assert m.validate_credentials({"key_id": "AKABCD", "secret": "s"}) == {
        "key_id": "AKABCD",
        "secret": "s",
    }
    assert errors(m.validate_credentials, {"key_id": "AKABCD"}) == {
        "secret": "is required together with key_id"
    }
    assert errors(m.validate_credentials, {"secret": "s"}) == {
        "key_id": "is required together with secret"
    }
    found = errors(m.validate_credentials, {"key_id": "hunter2-secretish", "secret": "s"})
    assert found == {"key_id": "must match AK[A-Z]{4}"}
    assert "hunter2" not in str(found)


def test_declarations_are_checked() -> None:
    with pytest.raises(ManifestError, match="pattern"):
        OptionField(name="x", label="X", pattern="(")
    with pytest.raises(ManifestError, match="max"):
        OptionField(name="x", label="X", type=OptionType.INTEGER, min=5, max=1)
    with pytest.raises(ManifestError, match="pattern"):
        OptionField(name="x", label="X", type=OptionType.INTEGER, pattern=r"\d+")
    with pytest.raises(ManifestError, match="together"):
        manifest().__class__(**{**_fields(manifest()), "together": (("key_id", "repo"),)})
    with pytest.raises(ManifestError, match="together"):
        manifest().__class__(**{**_fields(manifest()), "together": (("key_id",),)})


def _fields(m: PluginManifest) -> dict[str, object]:
    return {name: getattr(m, name) for name in m.__dataclass_fields__}


def test_round_trip_and_service_template_settings() -> None:
    template = ServiceTemplate(
        vendor="vend",
        name="V",
        category="c",
        settings={"region": "eu"},
        setting_fields=(OptionField(name="region", label="Region", choices=("eu", "us")),),
    )
    m = manifest(service_template=template)
    again = PluginManifest.from_dict(m.to_dict())
    assert again.to_dict() == m.to_dict()
    assert again.together == (("key_id", "secret"),)
    assert template.validate_settings({"region": "us", "other": "kept"}) == {
        "region": "us",
        "other": "kept",
    }
    assert errors(template.validate_settings, {"region": "mars"}) == {
        "region": "must be one of eu, us"
    }
    with pytest.raises(ManifestError, match="never secret"):
        ServiceTemplate(
            vendor="vend",
            name="V",
            category="c",
            setting_fields=(OptionField(name="api_token", label="Token"),),
        )
