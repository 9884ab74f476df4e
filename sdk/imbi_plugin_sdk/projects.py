"""Project metadata a plugin may read (contract 1.2, ``permissions.project_metadata``).

Owns ``ProjectMetadata`` (the non-secret facts Imbi holds about one project: id, slug,
name, description, project type, organization), the ``ProjectMetadataReader`` interface the
host implements (``context.projects``: set only when the manifest declares
``permissions.project_metadata``) and ``MemoryProjectMetadata``, an in-memory reader for
authors' tests.

Reads are scoped by the host to the organization of the call: ``get(slug)`` only ever finds
a project of that organization, and a project of another organization answers exactly like
a project that does not exist (``NotFound``). Metadata never carries credentials, tokens or
any other secret: only the fields below exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .errors import NotFound

__all__ = [
    "MAX_DESCRIPTION_CHARS",
    "MemoryProjectMetadata",
    "ProjectMetadata",
    "ProjectMetadataReader",
    "is_project_slug",
    "project_not_found",
]

MAX_DESCRIPTION_CHARS = 10_000
"""A description longer than this is cut (by the host) before it reaches a plugin."""

_SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")
_TEXT_FIELDS = ("slug", "name", "description", "project_type", "project_type_name", "organization")


def is_project_slug(value: object) -> bool:
    """Whether ``value`` can be a project slug (a string of 1-64 of a-z, A-Z, 0-9, - and _)."""
    return isinstance(value, str) and _SLUG_RE.match(value) is not None


def project_not_found(slug: object) -> NotFound:
    """The one error for a missing project and for another organization's project alike."""
    shown = slug if is_project_slug(slug) else "?"
    return NotFound(f"no project '{shown}' in this organization")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectMetadata:
    """One project as a plugin sees it. Every field is plain, non-secret data."""

    id: int
    slug: str
    name: str
    description: str = ""
    project_type: str
    """The project type's slug (``context.project_type`` for the current project)."""
    project_type_name: str = ""
    organization: str
    """The organization's slug: always the calling plugin's own organization."""

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, int):
            raise ValueError("project.id: expected an integer")
        for name in _TEXT_FIELDS:
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"project.{name}: expected a string")
        if not is_project_slug(self.slug):
            raise ValueError("project.slug: not a project slug")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "slug": self.slug,
            "name": self.name,
            "description": self.description,
            "project_type": self.project_type,
            "project_type_name": self.project_type_name,
            "organization": self.organization,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProjectMetadata:
        """Rebuild from ``to_dict()``; ``ValueError`` for anything else (unknown fields too)."""
        if not isinstance(data, Mapping):
            raise ValueError("project: expected an object")
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"project: unknown field {unknown[0]!r}")
        missing = sorted({"id", "slug", "name", "project_type", "organization"} - set(data))
        if missing:
            raise ValueError(f"project.{missing[0]}: is required")
        return cls(**dict(data))


@runtime_checkable
class ProjectMetadataReader(Protocol):
    """Read-only project metadata, scoped to the calling plugin's organization.

    ``current()`` is the project the call is about (``None`` when the call is about no
    project, such as a connection test); ``get(slug)`` is a project of the same
    organization, or ``NotFound`` (also for a slug of another organization's project).
    """

    def current(self) -> ProjectMetadata | None: ...

    def get(self, slug: str) -> ProjectMetadata: ...


class MemoryProjectMetadata:
    """A ``ProjectMetadataReader`` over a list of projects, for tests and the contract kit.

    Scoped like the host's: ``get`` finds only projects of ``organization`` (default: the
    current project's, else the first project's); ``current`` is the project whose slug is
    ``current`` (``None`` when not given).
    """

    def __init__(
        self,
        projects: Iterable[ProjectMetadata] = (),
        *,
        current: str | None = None,
        organization: str | None = None,
    ) -> None:
        self._projects = list(projects)
        self._current = (
            None
            if current is None
            else next((p for p in self._projects if p.slug == current), None)
        )
        if current is not None and self._current is None:
            raise ValueError(f"current: no project {current!r} among the projects given")
        if organization is None:
            first = self._current or (self._projects[0] if self._projects else None)
            organization = first.organization if first is not None else ""
        self.organization = organization
        self.reads: list[str] = []
        """Every slug asked for (``current()`` records ``""``), for assertions in tests."""

    def current(self) -> ProjectMetadata | None:
        self.reads.append("")
        return self._current

    def get(self, slug: str) -> ProjectMetadata:
        self.reads.append(slug if isinstance(slug, str) else repr(slug))
        for project in self._projects:
            if project.slug == slug and project.organization == self.organization:
                return project
        raise project_not_found(slug)
