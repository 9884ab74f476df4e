"""A configuration handler built on project metadata (contract 1.2, ``context.projects``).

``ExampleProjects`` serves the current project's metadata as read-only keys (``project/slug``,
``project/name``, ...) and, for each slug in its ``related`` option, the same keys of that
project of the organization (``related/<slug>/name``...). A related slug the host does not
find in the organization (missing, or another organization's) answers ``NotFound`` (404).
"""

from __future__ import annotations

from collections.abc import Sequence

from imbi_plugin_sdk import (
    ConfigKey,
    ConfigurationPlugin,
    ConfigValue,
    ConfigWrite,
    ConnectionResult,
    InvalidInput,
    OptionField,
    Permissions,
    PluginManifest,
    PluginType,
    ProjectMetadata,
    ProjectMetadataReader,
    UpstreamUnavailable,
)

FIELDS = ("id", "slug", "name", "description", "project_type", "project_type_name", "organization")


def _keys(prefix: str, project: ProjectMetadata) -> dict[str, str]:
    data = project.to_dict()
    return {f"{prefix}/{name}": str(data[name]) for name in FIELDS}


class ExampleProjects(ConfigurationPlugin):
    manifest = PluginManifest(
        slug="example-projects",
        name="Example project metadata",
        description="Shows the project's metadata and that of related projects as keys.",
        version="1.2.0",
        api_version="1.2",
        plugin_type=PluginType.CONFIGURATION,
        publisher="Imbi",
        options=(
            OptionField(
                name="related",
                label="Related projects",
                help="Comma-separated slugs of other projects of this organization.",
                default="",
            ),
        ),
        permissions=Permissions(project_metadata=True),
    )

    def _projects(self) -> ProjectMetadataReader:
        if self.context.projects is None:
            raise UpstreamUnavailable("the host did not provide project metadata")
        return self.context.projects

    def _values(self) -> dict[str, str]:
        projects = self._projects()
        values: dict[str, str] = {}
        current = projects.current()
        if current is not None:
            values.update(_keys("project", current))
        related = str(self.context.options.get("related") or "")
        for slug in filter(None, (part.strip() for part in related.split(","))):
            values.update(_keys(f"related/{slug}", projects.get(slug)))
        return values

    def test_connection(self) -> ConnectionResult:
        current = self._projects().current()
        where = f"project {current.slug}" if current is not None else "no project"
        return ConnectionResult.success(f"project metadata readable ({where})")

    def list_keys(self) -> list[ConfigKey]:
        return [ConfigKey(key=key) for key in sorted(self._values())]

    def get_values(self, keys: Sequence[str] | None = None) -> list[ConfigValue]:
        return [
            ConfigValue(key=key, value=value)
            for key, value in sorted(self._values().items())
            if keys is None or key in keys
        ]

    def set_value(self, key: str, value: ConfigWrite) -> ConfigKey:
        raise InvalidInput("project metadata is read only")

    def delete_key(self, key: str) -> None:
        raise InvalidInput("project metadata is read only")
