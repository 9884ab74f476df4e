"""Project metadata (contract 1.2): the model, the in-memory reader, the manifest permission,
and ``wire.execute`` handing ``context.projects`` only to plugins that declare it."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest
from imbi_plugin_sdk import (
    SDK_API_VERSION,
    ApiVersion,
    Call,
    ConfigKey,
    ConfigurationPlugin,
    ConfigValue,
    ConfigWrite,
    ConnectionResult,
    ManifestError,
    MemoryProjectMetadata,
    NotFound,
    Permissions,
    PluginContext,
    PluginManifest,
    PluginType,
    ProjectMetadata,
    ProjectMetadataReader,
    execute,
    is_compatible,
)
from imbi_plugin_sdk.projects import project_not_found
from imbi_plugin_sdk.testkit import (
    call_as_host,
    make_context,
    sample_call,
    sample_project,
    sample_projects,
)


def manifest(api_version: str = "1.2", **permissions: Any) -> PluginManifest:
    return PluginManifest(
        slug="meta-reader",
        name="Meta",
        description="reads project metadata",
        version="1.0.0",
        api_version=api_version,
        plugin_type=PluginType.CONFIGURATION,
        permissions=Permissions(**permissions),
    )


class Reader(ConfigurationPlugin):
    """Lists what ``context.projects`` shows: the current project and one asked by slug."""

    manifest = manifest(project_metadata=True)

    def test_connection(self) -> ConnectionResult:
        return ConnectionResult.success("ok")

    def list_keys(self) -> list[ConfigKey]:
        projects = self.context.projects
        if projects is None:
            return [ConfigKey(key="ABSENT")]
        current = projects.current()
        found = [f"CURRENT_{current.slug}_{current.organization}" if current else "NO_CURRENT"]
        for slug in filter(None, self.context.options.get("ask", "").split(",")):
            try:
                found.append(f"GOT_{projects.get(slug).name}")
            except NotFound as exc:
                found.append(f"NOT_FOUND_{exc.detail}")
        return [ConfigKey(key=name) for name in found]

    def get_values(self, keys: Sequence[str] | None = None) -> list[ConfigValue]:
        return []

    def set_value(self, key: str, value: ConfigWrite) -> ConfigKey:
        return ConfigKey(key=key)

    def delete_key(self, key: str) -> None:
        return None


class Undeclared(Reader):
    manifest = manifest()


def keys(handler: type[ConfigurationPlugin], ask: str = "", **context: Any) -> list[str]:
    ctx = make_context(options={"ask": ask}, **context)
    return [key.key for key in call_as_host(handler, "list_keys", context=ctx)]


# --------------------------------------------------------------------------- the model


def test_metadata_round_trips_and_holds_only_plain_fields() -> None:
    project = sample_project(description="Payments API")
    assert ProjectMetadata.from_dict(project.to_dict()) == project
    assert set(project.to_dict()) == {
        "id",
        "slug",
        "name",
        "description",
        "project_type",
        "project_type_name",
        "organization",
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        project.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**sample_project().to_dict(), "token": "x"}, "unknown field 'token'"),
        ({"slug": "a", "name": "A", "project_type": "api", "organization": "o"}, "project.id"),
        ({**sample_project().to_dict(), "id": True}, "project.id: expected an integer"),
        ({**sample_project().to_dict(), "slug": "../etc"}, "project.slug"),
        ({**sample_project().to_dict(), "name": 3}, "project.name: expected a string"),
        ([], "expected an object"),
    ],
)
def test_metadata_from_dict_refuses_what_does_not_fit(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        ProjectMetadata.from_dict(data)


# --------------------------------------------------------------------------- memory reader


def test_memory_reader_is_scoped_to_one_organization() -> None:
    reader = sample_projects()
    assert isinstance(reader, ProjectMetadataReader)
    assert reader.current() == sample_project()
    assert reader.get("contract-test-sibling").id == 2
    with pytest.raises(NotFound) as foreign:
        reader.get("contract-test-foreign")  # exists, in another organization
    with pytest.raises(NotFound) as missing:
        reader.get("contract-test-nowhere")
    assert foreign.value.detail == "no project 'contract-test-foreign' in this organization"
    assert missing.value.detail == "no project 'contract-test-nowhere' in this organization"
    assert reader.reads == [
        "",
        "contract-test-sibling",
        "contract-test-foreign",
        "contract-test-nowhere",
    ]


def test_memory_reader_without_a_current_project_and_bad_current() -> None:
    assert MemoryProjectMetadata([sample_project()]).current() is None
    assert MemoryProjectMetadata().organization == ""
    with pytest.raises(ValueError, match="no project 'nope'"):
        MemoryProjectMetadata([sample_project()], current="nope")


def test_not_found_never_echoes_an_odd_slug() -> None:
    assert project_not_found("x" * 500).detail == "no project '?' in this organization"
    assert project_not_found(None).detail == "no project '?' in this organization"


# --------------------------------------------------------------------------- manifest


def test_permission_defaults_off_and_keeps_older_manifest_shapes() -> None:
    assert Permissions().project_metadata is False
    assert "project_metadata" not in manifest("1.0").to_dict()["permissions"]
    declared = manifest(project_metadata=True)
    assert declared.to_dict()["permissions"]["project_metadata"] is True
    assert PluginManifest.from_dict(declared.to_dict()) == declared
    assert declared.permissions.describe() == ["project metadata"]
    assert Permissions(network_hosts=("a.example.com",), storage=True).describe() == [
        "network a.example.com",
        "storage",
    ]


def test_permission_needs_contract_1_2_and_a_boolean() -> None:
    with pytest.raises(ManifestError) as caught:
        manifest("1.1", project_metadata=True)
    assert caught.value.field == "permissions.project_metadata"
    assert "needs api_version 1.2" in str(caught.value)
    with pytest.raises(ManifestError) as caught:
        Permissions(project_metadata="yes")  # type: ignore[arg-type]
    assert caught.value.field == "project_metadata"


def test_contract_version_is_1_2_and_a_1_1_host_refuses_a_1_2_plugin() -> None:
    assert ApiVersion.parse(SDK_API_VERSION) >= ApiVersion(1, 2)
    ok, reason = is_compatible(ApiVersion(1, 2), ApiVersion(1, 1))
    assert (ok, reason) == (False, "plugin targets api 1.2; host supports 1.x up to 1.1")
    assert is_compatible(ApiVersion(1, 1), ApiVersion(1, 2)) == (True, "")
    # what a 1.1 host's manifest parser says about a 1.2 manifest: the field is unknown to it
    data = manifest(project_metadata=True).to_dict()
    data["permissions"]["not_in_this_sdk"] = True
    with pytest.raises(ManifestError) as caught:
        PluginManifest.from_dict(data)
    assert caught.value.field == "permissions.not_in_this_sdk"


# --------------------------------------------------------------------------- execute


def test_a_declared_plugin_reads_its_organization_only() -> None:
    assert keys(Reader, "contract-test-sibling,contract-test-foreign") == [
        "CURRENT_contract-test-project_contract-test",
        "GOT_Contract Test Sibling",
        "NOT_FOUND_no project 'contract-test-foreign' in this organization",
    ]


def test_an_undeclared_capability_is_absent() -> None:
    reader = sample_projects()
    assert keys(Undeclared, "contract-test-sibling", projects=reader) == ["ABSENT"]
    assert reader.reads == []  # never consulted


def test_execute_hands_the_reader_it_is_given_and_none_without_one() -> None:
    ctx = make_context(options={"ask": ""})
    call = Call.from_json(sample_call("list_keys", context=ctx).to_json())
    assert "projects" not in call.context  # the reader never crosses the wire
    reply = execute(call, Reader)
    assert reply.unwrap("list_keys") == [ConfigKey(key="ABSENT")]
    reply = execute(call, Reader, projects=MemoryProjectMetadata())
    assert reply.unwrap("list_keys") == [ConfigKey(key="NO_CURRENT")]


def test_context_from_dict_takes_the_reader_as_a_side_channel() -> None:
    reader = sample_projects()
    rebuilt = PluginContext.from_dict(make_context().to_dict(), projects=reader)
    assert rebuilt.projects is reader
    assert PluginContext.from_dict(make_context().to_dict()).projects is None
    with pytest.raises(ValueError, match="unknown field 'projects'"):
        PluginContext.from_dict({**make_context().to_dict(), "projects": {}})
