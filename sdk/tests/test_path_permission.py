"""``Permissions.operator_path_settings`` (contract 1.2): an operator-chosen host directory
a plugin may read when isolated. Declared by setting name; versioned; round-trips."""

from __future__ import annotations

from typing import Any

import pytest
from imbi_plugin_sdk import ManifestError, Permissions, PluginManifest, PluginType


def manifest(api_version: str = "1.2", **permissions: Any) -> PluginManifest:
    return PluginManifest(
        slug="file-reader",
        name="Files",
        description="reads files in an operator-chosen directory",
        version="1.0.0",
        api_version=api_version,
        plugin_type=PluginType.LOGS,
        permissions=Permissions(**permissions),
    )


def test_defaults_off_and_older_shapes_are_kept() -> None:
    assert Permissions().operator_path_settings == ()
    assert "operator_path_settings" not in manifest().to_dict()["permissions"]


def test_declared_round_trips_and_is_described() -> None:
    declared = manifest(operator_path_settings=["directory"])
    assert declared.permissions.operator_path_settings == ("directory",)  # a list is frozen
    assert declared.to_dict()["permissions"]["operator_path_settings"] == ["directory"]
    assert PluginManifest.from_dict(declared.to_dict()) == declared
    assert declared.permissions.describe() == ["read files in setting directory"]


def test_needs_contract_1_2() -> None:
    with pytest.raises(ManifestError) as caught:
        manifest("1.1", operator_path_settings=("directory",))
    assert caught.value.field == "permissions.operator_path_settings"
    assert "needs api_version 1.2" in str(caught.value)


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (("Log Dir",), "operator_path_settings[0]"),
        (("../etc",), "operator_path_settings[0]"),
        ((3,), "operator_path_settings[0]"),
        (("directory", "directory"), "operator_path_settings"),
        ("directory", "operator_path_settings"),  # a bare string is not a list of names
    ],
)
def test_names_must_be_setting_names(value: Any, field: str) -> None:
    with pytest.raises(ManifestError) as caught:
        Permissions(operator_path_settings=value)
    assert caught.value.field == field
