"""Manifest validation, option/credential validation, api compatibility, templates."""

import dataclasses
import json
from typing import Any

import pytest
from imbi_plugin_sdk import (
    SDK_API_VERSION,
    ApiVersion,
    CredentialField,
    Hints,
    ManifestError,
    OptionField,
    OptionType,
    OptionValidationError,
    Permissions,
    PluginManifest,
    PluginType,
    ServiceTemplate,
    is_compatible,
)


def manifest_dict(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "slug": "aws-ssm",
        "name": "AWS SSM Parameter Store",
        "description": "Configuration from SSM",
        "version": "1.2.0",
        "api_version": "1.0",
        "plugin_type": "configuration",
        "options": [
            {"name": "region", "label": "Region", "required": True, "default": "us-east-1"},
            {"name": "page_size", "label": "Page size", "type": "integer", "default": 50},
            {"name": "recursive", "label": "Recursive", "type": "boolean"},
            {"name": "tier", "label": "Tier", "choices": ["Standard", "Advanced"]},
        ],
        "credentials": [
            {"name": "access_key_id", "label": "Access key id", "secret": False},
            {"name": "secret_access_key", "label": "Secret access key"},
        ],
        "permissions": {"network_hosts": ["*.amazonaws.com", "ssm.local:4566"]},
        "hints": {"cacheable": True, "cache_ttl": 60},
        "service_template": {
            "vendor": "aws",
            "name": "Amazon Web Services",
            "category": "cloud",
            "base_url": "https://console.aws.amazon.com",
            "links": [["Docs", "https://docs.aws.amazon.com/ssm/"]],
            "icon": "plugins_core.provisioning.icons:aws.svg",
            "settings": {"region": "us-east-1", "retries": 3, "fips": False},
        },
        "publisher": "Imbi",
        "homepage": "https://github.com/example/imbi",
    }
    data.update(overrides)
    return data


def build(**overrides: Any) -> PluginManifest:
    return PluginManifest.from_dict(manifest_dict(**overrides))


def test_valid_manifest_and_json_round_trip() -> None:
    manifest = build()
    assert manifest.plugin_type is PluginType.CONFIGURATION
    assert manifest.options[1].type is OptionType.INTEGER
    assert manifest.api == ApiVersion(1, 0)
    again = PluginManifest.from_dict(json.loads(json.dumps(manifest.to_dict())))
    assert again == manifest


def test_python_construction_coerces_plugin_type() -> None:
    manifest = PluginManifest(
        slug="logs-demo",
        name="Demo",
        description="",
        version="0.1.0a1",
        api_version=SDK_API_VERSION,
        plugin_type="logs",  # type: ignore[arg-type]
        options=[OptionField(name="group", label="Group")],  # type: ignore[arg-type]
        hints=Hints(supports_histogram=True),
    )
    assert manifest.plugin_type is PluginType.LOGS
    assert isinstance(manifest.options, tuple)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"slug": "A"}, "slug"),
        ({"slug": "1abc"}, "slug"),
        ({"slug": "x" * 65}, "slug"),
        ({"name": ""}, "name"),
        ({"version": ""}, "version"),
        ({"version": "one"}, "version"),
        ({"api_version": "1"}, "api_version"),
        ({"api_version": "v1.0"}, "api_version"),
        ({"plugin_type": "metrics"}, "plugin_type"),
        ({"homepage": "ftp://x"}, "homepage"),
        ({"unexpected": 1}, "unexpected"),
        (
            {
                "options": [
                    {"name": "a", "label": "A"},
                    {"name": "b", "label": "B", "type": "float"},
                ]
            },
            "options[1].type",
        ),
        ({"options": [{"name": "Bad Name", "label": "A"}]}, "options[0].name"),
        ({"options": [{"name": "a"}]}, "options[0].label"),
        (
            {"options": [{"name": "a", "label": "A", "type": "integer", "default": "x"}]},
            "options[0].default",
        ),
        (
            {"options": [{"name": "a", "label": "A", "type": "integer", "choices": [1, "z"]}]},
            "options[0].choices[1]",
        ),
        (
            {"options": [{"name": "a", "label": "A", "type": "secret", "default": "s"}]},
            "options[0].default",
        ),
        (
            {"options": [{"name": "a", "label": "A"}, {"name": "a", "label": "B"}]},
            "options[1].name",
        ),
        (
            {"credentials": [{"name": "k", "label": "K"}, {"name": "k", "label": "K2"}]},
            "credentials[1].name",
        ),
        ({"credentials": [{"name": "k", "label": "K", "secret": "yes"}]}, "credentials[0].secret"),
        ({"permissions": {"network_hosts": ["http://x.com"]}}, "permissions.network_hosts[0]"),
        ({"hints": {"cacheable": True, "cache_ttl": 0}}, "hints.cache_ttl"),
        ({"hints": {"supports_histogram": True}}, "hints.supports_histogram"),
        (
            {"service_template": {"vendor": "AWS!", "name": "n", "category": "c"}},
            "service_template.vendor",
        ),
        (
            {"service_template": {"vendor": "aws", "name": "n", "category": "c", "icon": "x.png"}},
            "service_template.icon",
        ),
    ],
)
def test_invalid_field_is_named(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ManifestError) as caught:
        build(**overrides)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_bad_option_type_message_lists_allowed() -> None:
    with pytest.raises(ManifestError, match=r"^options\[0\]\.type: 'float' is not one of string"):
        build(options=[{"name": "a", "label": "A", "type": "float"}])


def test_identity_plugins_take_no_hints() -> None:
    with pytest.raises(ManifestError) as caught:
        build(plugin_type="identity", hints={"cacheable": True, "cache_ttl": 5})
    assert caught.value.field == "hints.cacheable"


@pytest.mark.parametrize(
    ("plugin", "compatible"),
    [("1.0", True), ("1.1", False), ("0.9", False), ("2.0", False)],
)
def test_api_compatibility_matrix(plugin: str, compatible: bool) -> None:
    ok, reason = is_compatible(ApiVersion.parse(plugin), ApiVersion.parse("1.0"))
    assert ok is compatible
    assert (reason == "") is compatible


def test_api_compatibility_reason_and_older_minor() -> None:
    assert is_compatible(ApiVersion(1, 0), ApiVersion(1, 3)) == (True, "")
    assert is_compatible(ApiVersion(2, 0), ApiVersion(1, 0)) == (
        False,
        "plugin targets api 2.0; host supports 1.x up to 1.0",
    )
    assert str(ApiVersion.parse("1.12")) == "1.12"


@pytest.mark.parametrize("text", ["", "1", "1.0.0", "a.b", "01.0", "1.0 "])
def test_api_version_parse_rejects(text: str) -> None:
    with pytest.raises(ManifestError):
        ApiVersion.parse(text)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"api_token": "abc"}, "api_token"),
        ({"password": "x"}, "password"),
        ({"client_secret": "x"}, "client_secret"),
        ({"API-Key": "x"}, "API-Key"),
        ({"private_key_path": "x"}, "private_key_path"),
        ({"account": "AKIAIOSFODNN7EXAMPLE"}, "account"),
        ({"blob": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}, "blob"),
        ({"blob": "a3f1c9e07b2d4e8f9a6c5b4d3e2f1a0b9c8d7e6f"}, "blob"),
        ({"endpoint": "https://u:p@host.example.com"}, "endpoint"),
    ],
)
def test_template_refuses_secret_shapes(settings: dict[str, Any], field: str) -> None:
    template = {"vendor": "aws", "name": "AWS", "category": "cloud", "settings": settings}
    with pytest.raises(ManifestError) as caught:
        build(service_template=template)
    assert caught.value.field == f"service_template.settings.{field}"
    assert str(caught.value) == (
        f"service_template.settings.{field}: looks like a secret; templates must not carry secrets"
    )


def test_template_refuses_secret_urls_and_keeps_normal_values() -> None:
    with pytest.raises(ManifestError, match=r"^service_template\.base_url: looks like a secret"):
        ServiceTemplate(vendor="xio", name="X", category="c", base_url="https://tok@api.x.io")
    template = ServiceTemplate(
        vendor="aws",
        name="AWS",
        category="cloud",
        settings={"region": "us-east-1", "log_group": "us-east-1-production-cluster-0001"},
    )
    assert template.settings["region"] == "us-east-1"


def test_direct_construction_errors_name_local_field() -> None:
    with pytest.raises(ManifestError) as caught:
        OptionField(name="a", label="A", type="float")  # type: ignore[arg-type]
    assert caught.value.field == "type"
    with pytest.raises(ManifestError):
        CredentialField(name="", label="x")
    with pytest.raises(ManifestError):
        Permissions(network_hosts=("exa mple.com",))


def test_option_field_validate_coerces() -> None:
    integer = OptionField(name="n", label="N", type=OptionType.INTEGER)
    assert integer.validate("12") == 12
    assert integer.validate(7) == 7
    boolean = OptionField(name="b", label="B", type=OptionType.BOOLEAN)
    assert boolean.validate("true") is True
    assert boolean.validate("False") is False
    mapping = OptionField(name="m", label="M", type=OptionType.MAPPING)
    assert mapping.validate({"a": "b"}) == {"a": "b"}
    choice = OptionField(name="c", label="C", choices=("x", "y"))
    assert choice.validate("y") == "y"
    for field, value in [
        (integer, "1.5"),
        (integer, True),
        (boolean, "maybe"),
        (choice, "z"),
        (mapping, {"a": 1}),
    ]:
        with pytest.raises(OptionValidationError) as caught:
            field.validate(value)
        assert set(caught.value.errors) == {field.name}


def test_secret_option_errors_do_not_echo_value() -> None:
    option = OptionField(name="s", label="S", type=OptionType.SECRET, choices=("a",))
    with pytest.raises(OptionValidationError) as caught:
        option.validate("hunter2-secret")
    assert "hunter2" not in str(caught.value)


def test_validate_options_reports_all_errors_at_once() -> None:
    manifest = build()
    assert manifest.validate_options({"page_size": "20", "recursive": "false"}) == {
        "region": "us-east-1",
        "page_size": 20,
        "recursive": False,
        "tier": None,
    }
    with pytest.raises(OptionValidationError) as caught:
        manifest.validate_options({"page_size": "many", "tier": "Gold", "colour": "red"})
    assert set(caught.value.errors) == {"page_size", "tier", "colour"}
    assert caught.value.errors["colour"] == "unknown option"


def test_required_option_without_default() -> None:
    manifest = build(options=[{"name": "group", "label": "Group", "required": True}])
    with pytest.raises(OptionValidationError) as caught:
        manifest.validate_options({})
    assert caught.value.errors == {"group": "is required"}


def test_validate_credentials() -> None:
    manifest = build()
    creds = {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "s3cr3t"}
    assert manifest.validate_credentials(creds) == creds
    with pytest.raises(OptionValidationError) as caught:
        manifest.validate_credentials({"access_key_id": 5, "token": "s3cr3t"})
    assert caught.value.errors == {
        "access_key_id": "expected a string",
        "secret_access_key": "is required",
        "token": "unknown credential",
    }
    assert "s3cr3t" not in str(caught.value)


def test_permissions_allows_host() -> None:
    permissions = Permissions(network_hosts=("*.amazonaws.com", "localhost:4566", "api.x.io"))
    assert permissions.allows_host("ssm.us-east-1.amazonaws.com")
    assert not permissions.allows_host("amazonaws.com")
    assert not permissions.allows_host("evilamazonaws.com")
    assert permissions.allows_host("localhost", 4566)
    assert not permissions.allows_host("localhost", 80)
    assert permissions.allows_host("API.x.io", 443)


def test_manifest_is_frozen() -> None:
    manifest = build()
    with pytest.raises(dataclasses.FrozenInstanceError):
        manifest.slug = "other"  # type: ignore[misc]


def test_manifest_is_hashable_and_mapping_defaults_not_shared() -> None:
    manifest = build(
        options=[{"name": "labels", "label": "Labels", "type": "mapping", "default": {"a": "b"}}]
    )
    assert hash(manifest) == hash(build(options=manifest.to_dict()["options"]))
    first = manifest.validate_options({})
    first["labels"]["a"] = "changed"  # type: ignore[index]
    assert manifest.validate_options({})["labels"] == {"a": "b"}


def test_the_contract_version_is_the_distributions_major_minor() -> None:
    from importlib import metadata

    import imbi_plugin_sdk

    major, minor, _patch = imbi_plugin_sdk.__version__.split(".")
    assert f"{major}.{minor}" == SDK_API_VERSION
    assert metadata.version("imbi-plugin-sdk") == imbi_plugin_sdk.__version__
