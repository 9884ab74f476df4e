"""Host project metadata handed to plugins that declare ``permissions.project_metadata``.

``DatabaseProjectMetadata`` is the host's ``ProjectMetadataReader``: every read is one query
filtered by the calling binding's organization (never by anything the plugin sends), so a
project of another organization is indistinguishable from a project that does not exist:
both answer the SDK's ``NotFound`` with the same detail. Only the fields of
``imbi_plugin_sdk.ProjectMetadata`` leave the database (no owners, no credentials, no
tokens). In-process plugins call it directly; isolated runners reach it through the
``project.current``/``project.get`` host requests (``plugins_core.isolation.host``).
"""

from __future__ import annotations

from typing import Any

from imbi_plugin_sdk import ProjectMetadata
from imbi_plugin_sdk.projects import MAX_DESCRIPTION_CHARS, is_project_slug, project_not_found

from imbi.core.models import Project

_FIELDS = (
    "id",
    "slug",
    "name",
    "description",
    "project_type__slug",
    "project_type__name",
    "organization__slug",
)


def _metadata(row: dict[str, Any]) -> ProjectMetadata:
    return ProjectMetadata(
        id=row["id"],
        slug=row["slug"],
        name=row["name"],
        description=str(row["description"])[:MAX_DESCRIPTION_CHARS],
        project_type=row["project_type__slug"],
        project_type_name=row["project_type__name"],
        organization=row["organization__slug"],
    )


class DatabaseProjectMetadata:
    """Project metadata of one organization, with ``current_id`` as the call's project."""

    def __init__(self, organization_id: int, current_id: int | None = None) -> None:
        self.organization_id = organization_id
        self.current_id = current_id

    def _one(self, **lookup: Any) -> dict[str, Any] | None:
        rows = Project.objects.filter(organization_id=self.organization_id, **lookup)
        found: dict[str, Any] | None = rows.values(*_FIELDS).first()
        return found

    def current(self) -> ProjectMetadata | None:
        if self.current_id is None:
            return None
        row = self._one(pk=self.current_id)
        return None if row is None else _metadata(row)

    def get(self, slug: str) -> ProjectMetadata:
        if not is_project_slug(slug):
            raise project_not_found(slug)
        row = self._one(slug=slug)
        if row is None:
            raise project_not_found(slug)
        return _metadata(row)
