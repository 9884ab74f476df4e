"""Deployment models (contract 1.3): what a ``DeploymentPlugin`` takes and returns.

Refs (``GitRef``: branches and tags, paged by ``RefQuery``/``RefPage``), commits
(``CommitQuery``/``CommitPage``), a comparison of two refs (``Comparison``), environments,
and deployments (``DeploymentRequest`` in; ``Deployment`` out, with a ``DeploymentStatus``
and the URL of the provider's run page). A deployment plugin usually declares
``requires_identity`` so it acts as the signed-in user (``context.identity``).

Every model validates on construction (``InvalidInput`` naming the field) and has a
lossless ``to_dict()``/``from_dict()``; datetimes are timezone-aware UTC.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from .types import _aware, _dt_in, _dt_out, _int, _invalid, _need, _seq, _set, _str

__all__ = [
    "Commit",
    "CommitPage",
    "CommitQuery",
    "Comparison",
    "ComparisonStatus",
    "Deployment",
    "DeploymentQuery",
    "DeploymentRequest",
    "DeploymentStatus",
    "Environment",
    "GitRef",
    "RefKind",
    "RefPage",
    "RefQuery",
    "validate_ref_name",
]

_SHA_RE = re.compile(r"^[0-9a-f]{7,64}$")
_URL_RE = re.compile(r"^https?://[^\s/?#]+[^\s]*$")
_ENV_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,255}$")
_INPUT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")


def validate_ref_name(name: object, path: str = "ref") -> str:
    """A git ref name (branch, tag or commit SHA) by git's own rules, short form."""
    text = _str(name, path)
    if (
        not 1 <= len(text) <= 255
        or re.search(r"[\x00-\x20\x7f~^:?*\[\\]", text)
        or ".." in text
        or "@{" in text
        or "//" in text
        or text.startswith(("/", "-", "."))
        or text.endswith(("/", ".", ".lock"))
    ):
        _invalid(path, "is not a valid git ref name")
    return text


def _url(value: object, path: str) -> str:
    text = _str(value, path)
    if text and not _URL_RE.match(text):
        _invalid(path, "expected an absolute http(s) URL")
    return text


def _sha(value: object, path: str, *, optional: bool = False) -> str:
    text = _str(value, path)
    if optional and text == "":
        return text
    if not _SHA_RE.match(text):
        _invalid(path, "expected a lowercase hexadecimal commit SHA")
    return text


def _cursor(value: object, path: str) -> str | None:
    if value is None:
        return None
    text = _str(value, path)
    if not 1 <= len(text) <= 1024:
        _invalid(path, "expected 1-1024 characters")
    return text


def _items(value: object, kind: type[Any], path: str) -> tuple[Any, ...]:
    items = _seq(value, path)
    for index, item in enumerate(items):
        if not isinstance(item, kind):
            _invalid(f"{path}[{index}]", f"expected a {kind.__name__}")
    return items


class RefKind(StrEnum):
    BRANCH = "branch"
    TAG = "tag"


@dataclass(frozen=True, slots=True, kw_only=True)
class GitRef:
    """A branch or tag and the commit it points at."""

    name: str
    kind: RefKind = RefKind.BRANCH
    sha: str = ""
    default: bool = False
    protected: bool = False

    def __post_init__(self) -> None:
        validate_ref_name(self.name, "name")
        try:
            _set(self, "kind", RefKind(self.kind))
        except ValueError:
            _invalid("kind", "expected branch or tag")
        _sha(self.sha, "sha", optional=True)
        for name in ("default", "protected"):
            if not isinstance(getattr(self, name), bool):
                _invalid(name, "expected a boolean")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind.value,
            "sha": self.sha,
            "default": self.default,
            "protected": self.protected,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            name=_need(data, "name", cls.__name__),
            kind=data.get("kind", RefKind.BRANCH),
            sha=data.get("sha", ""),
            default=data.get("default", False),
            protected=data.get("protected", False),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RefQuery:
    """The input of ``list_refs``: ``kind`` ``None`` lists both; ``prefix`` filters names."""

    kind: RefKind | None = None
    prefix: str = ""
    limit: int = 100
    cursor: str | None = None

    def __post_init__(self) -> None:
        if self.kind is not None:
            try:
                _set(self, "kind", RefKind(self.kind))
            except ValueError:
                _invalid("kind", "expected branch, tag or null")
        if len(_str(self.prefix, "prefix")) > 255:
            _invalid("prefix", "must be at most 255 characters")
        _int(self.limit, "limit", 1, 1000)
        _cursor(self.cursor, "cursor")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value if self.kind is not None else None,
            "prefix": self.prefix,
            "limit": self.limit,
            "cursor": self.cursor,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        if not isinstance(data, Mapping):
            _invalid(cls.__name__, "expected an object")
        return cls(
            kind=data.get("kind"),
            prefix=data.get("prefix", ""),
            limit=data.get("limit", 100),
            cursor=data.get("cursor"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RefPage:
    refs: tuple[GitRef, ...] = ()
    next_cursor: str | None = None

    def __post_init__(self) -> None:
        _set(self, "refs", _items(self.refs, GitRef, "refs"))
        _cursor(self.next_cursor, "next_cursor")

    def to_dict(self) -> dict[str, Any]:
        return {"refs": [ref.to_dict() for ref in self.refs], "next_cursor": self.next_cursor}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        refs = _seq(_need(data, "refs", cls.__name__), "refs")
        return cls(
            refs=tuple(GitRef.from_dict(item) for item in refs),
            next_cursor=data.get("next_cursor"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Commit:
    sha: str
    message: str
    author: str = ""
    authored_at: datetime | None = None
    url: str = ""

    def __post_init__(self) -> None:
        _sha(self.sha, "sha")
        _str(self.message, "message")
        _str(self.author, "author")
        if self.authored_at is not None:
            _set(self, "authored_at", _aware(self.authored_at, "authored_at"))
        _url(self.url, "url")

    @property
    def title(self) -> str:
        """The first line of the message."""
        return self.message.split("\n", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "sha": self.sha,
            "message": self.message,
            "author": self.author,
            "authored_at": _dt_out(self.authored_at),
            "url": self.url,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            sha=_need(data, "sha", cls.__name__),
            message=_need(data, "message", cls.__name__),
            author=data.get("author", ""),
            authored_at=_dt_in(data.get("authored_at"), "authored_at"),
            url=data.get("url", ""),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitQuery:
    """The input of ``list_commits``: newest first from ``ref``."""

    ref: str
    limit: int = 30
    cursor: str | None = None

    def __post_init__(self) -> None:
        validate_ref_name(self.ref)
        _int(self.limit, "limit", 1, 1000)
        _cursor(self.cursor, "cursor")

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "limit": self.limit, "cursor": self.cursor}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            ref=_need(data, "ref", cls.__name__),
            limit=data.get("limit", 30),
            cursor=data.get("cursor"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitPage:
    commits: tuple[Commit, ...] = ()
    next_cursor: str | None = None

    def __post_init__(self) -> None:
        _set(self, "commits", _items(self.commits, Commit, "commits"))
        _cursor(self.next_cursor, "next_cursor")

    def to_dict(self) -> dict[str, Any]:
        return {
            "commits": [commit.to_dict() for commit in self.commits],
            "next_cursor": self.next_cursor,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        commits = _seq(_need(data, "commits", cls.__name__), "commits")
        return cls(
            commits=tuple(Commit.from_dict(item) for item in commits),
            next_cursor=data.get("next_cursor"),
        )


class ComparisonStatus(StrEnum):
    AHEAD = "ahead"
    BEHIND = "behind"
    IDENTICAL = "identical"
    DIVERGED = "diverged"


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """``head`` compared with ``base``: ``commits`` are those in head and not in base."""

    base: str
    head: str
    status: ComparisonStatus
    ahead_by: int = 0
    behind_by: int = 0
    commits: tuple[Commit, ...] = ()
    url: str = ""

    def __post_init__(self) -> None:
        validate_ref_name(self.base, "base")
        validate_ref_name(self.head, "head")
        try:
            _set(self, "status", ComparisonStatus(self.status))
        except ValueError:
            _invalid("status", "expected ahead, behind, identical or diverged")
        _int(self.ahead_by, "ahead_by", 0)
        _int(self.behind_by, "behind_by", 0)
        _set(self, "commits", _items(self.commits, Commit, "commits"))
        _url(self.url, "url")

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "head": self.head,
            "status": self.status.value,
            "ahead_by": self.ahead_by,
            "behind_by": self.behind_by,
            "commits": [commit.to_dict() for commit in self.commits],
            "url": self.url,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            base=_need(data, "base", cls.__name__),
            head=_need(data, "head", cls.__name__),
            status=_need(data, "status", cls.__name__),
            ahead_by=data.get("ahead_by", 0),
            behind_by=data.get("behind_by", 0),
            commits=tuple(Commit.from_dict(item) for item in _seq(data.get("commits", []), "c")),
            url=data.get("url", ""),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Environment:
    name: str
    url: str = ""
    protected: bool = False

    def __post_init__(self) -> None:
        if not _ENV_RE.match(_str(self.name, "name")):
            _invalid("name", "expected 1-255 characters without control characters")
        _url(self.url, "url")
        if not isinstance(self.protected, bool):
            _invalid("protected", "expected a boolean")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "protected": self.protected}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            name=_need(data, "name", cls.__name__),
            url=data.get("url", ""),
            protected=data.get("protected", False),
        )


class DeploymentStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"

    @property
    def done(self) -> bool:
        """Whether the deployment has finished (stop polling)."""
        return self in (
            DeploymentStatus.SUCCESS,
            DeploymentStatus.FAILURE,
            DeploymentStatus.CANCELLED,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentQuery:
    """The input of ``list_deployments``: newest first, optionally of one environment."""

    environment: str | None = None
    limit: int = 20

    def __post_init__(self) -> None:
        if self.environment is not None and not _ENV_RE.match(
            _str(self.environment, "environment")
        ):
            _invalid("environment", "expected 1-255 characters without control characters")
        _int(self.limit, "limit", 1, 100)

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "limit": self.limit}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        if not isinstance(data, Mapping):
            _invalid(cls.__name__, "expected an object")
        return cls(environment=data.get("environment"), limit=data.get("limit", 20))


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentRequest:
    """The input of ``trigger_deployment``: deploy ``ref`` to ``environment``. ``inputs``
    are workflow inputs (names like identifiers, string values), never secrets."""

    ref: str
    environment: str
    inputs: Mapping[str, str] = dataclasses.field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        validate_ref_name(self.ref)
        if not _ENV_RE.match(_str(self.environment, "environment")):
            _invalid("environment", "expected 1-255 characters without control characters")
        if not isinstance(self.inputs, Mapping) or len(self.inputs) > 25:
            _invalid("inputs", "expected at most 25 inputs")
        for key, value in self.inputs.items():
            if not isinstance(key, str) or not _INPUT_RE.match(key):
                _invalid("inputs", f"{key!r} is not an input name")
            if not isinstance(value, str) or len(value) > 1024:
                _invalid(f"inputs.{key}", "expected a string of at most 1024 characters")
        _set(self, "inputs", dict(self.inputs))
        if len(_str(self.description, "description")) > 1000:
            _invalid("description", "must be at most 1000 characters")

    def __hash__(self) -> int:
        return hash((self.ref, self.environment))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "environment": self.environment,
            "inputs": dict(self.inputs),
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            ref=_need(data, "ref", cls.__name__),
            environment=_need(data, "environment", cls.__name__),
            inputs=data.get("inputs", {}),
            description=data.get("description", ""),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    """A deployment (or workflow run) at the provider. ``id`` is the provider's, opaque;
    ``url`` is its run page. ``status`` is one of ``DeploymentStatus``."""

    id: str
    ref: str
    environment: str
    status: DeploymentStatus
    sha: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    url: str = ""
    creator: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if not 1 <= len(_str(self.id, "id")) <= 255:
            _invalid("id", "expected 1-255 characters")
        validate_ref_name(self.ref)
        if not _ENV_RE.match(_str(self.environment, "environment")):
            _invalid("environment", "expected 1-255 characters without control characters")
        try:
            _set(self, "status", DeploymentStatus(self.status))
        except ValueError:
            _invalid("status", f"{self.status!r} is not a deployment status")
        _sha(self.sha, "sha", optional=True)
        for name in ("created_at", "updated_at"):
            value = getattr(self, name)
            if value is not None:
                _set(self, name, _aware(value, name))
        _url(self.url, "url")
        _str(self.creator, "creator")
        _str(self.description, "description")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ref": self.ref,
            "environment": self.environment,
            "status": self.status.value,
            "sha": self.sha,
            "created_at": _dt_out(self.created_at),
            "updated_at": _dt_out(self.updated_at),
            "url": self.url,
            "creator": self.creator,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            id=_need(data, "id", cls.__name__),
            ref=_need(data, "ref", cls.__name__),
            environment=_need(data, "environment", cls.__name__),
            status=_need(data, "status", cls.__name__),
            sha=data.get("sha", ""),
            created_at=_dt_in(data.get("created_at"), "created_at"),
            updated_at=_dt_in(data.get("updated_at"), "updated_at"),
            url=data.get("url", ""),
            creator=data.get("creator", ""),
            description=data.get("description", ""),
        )
