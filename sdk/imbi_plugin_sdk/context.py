"""What the host hands a plugin for one call, besides the request itself.

Owns ``Credentials`` (a read-only mapping that never shows its values), the two small
interfaces the host implements for a plugin (``KeyValueStore`` for storage, ``LogSink`` for
log lines; in-process or over the wire in an isolated runtime) with in-memory versions
for tests, and ``PluginContext`` (who is asking, with which options, within how much time,
and the capabilities the manifest declared), which crosses a process boundary as
``to_dict()``/``from_dict()``. The project-metadata capability lives in ``projects``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NoReturn, Protocol, runtime_checkable

from .identity import IdentityContext
from .projects import ProjectMetadataReader

__all__ = [
    "Credentials",
    "KeyValueStore",
    "LogSink",
    "MemoryKeyValueStore",
    "MemoryLogSink",
    "PluginContext",
    "sink_logger",
]


class Credentials(Mapping[str, str]):
    """Read-only credential values. ``repr``/``str`` show names only, never values.

    Pickling is refused so values cannot leak into caches, task queues or logs by
    accident; a host that must move them does so explicitly with ``dict(credentials)``.
    """

    __slots__ = ("_values",)
    _values: Mapping[str, str]

    def __init__(self, values: Mapping[str, str] | None = None, /, **more: str) -> None:
        merged = {**(values or {}), **more}
        for name, value in merged.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError(f"credential {name!r}: names and values must be strings")
        object.__setattr__(self, "_values", MappingProxyType(merged))

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Credentials({', '.join(f'{name}=***' for name in self._values)})"

    __str__ = __repr__

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("Credentials are read-only")

    def __reduce__(self) -> NoReturn:
        raise TypeError("Credentials cannot be pickled; pass dict(credentials) explicitly")

    def __copy__(self) -> Credentials:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Credentials:
        return self


@runtime_checkable
class KeyValueStore(Protocol):
    """Small per-plugin string storage the host offers when ``permissions.storage``."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str) -> None: ...

    def delete(self, key: str) -> None: ...

    def keys(self, prefix: str = "") -> list[str]: ...


class MemoryKeyValueStore:
    """A dict-backed ``KeyValueStore`` for tests and the contract test kit."""

    def __init__(self, initial: Mapping[str, str] | None = None) -> None:
        self._data: dict[str, str] = dict(initial or {})

    def get(self, key: str) -> str | None:
        return self._data.get(key)

    def set(self, key: str, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("values must be strings")
        self._data[key] = value

    def delete(self, key: str) -> None:
        self._data.pop(key, None)

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(key for key in self._data if key.startswith(prefix))


@runtime_checkable
class LogSink(Protocol):
    """Where a plugin's log lines go: the host implements it (and redacts secrets)."""

    def log(self, level: int, message: str) -> None: ...


class MemoryLogSink:
    """A ``LogSink`` that keeps ``(level, message)`` pairs, for tests."""

    def __init__(self) -> None:
        self.records: list[tuple[int, str]] = []

    def log(self, level: int, message: str) -> None:
        self.records.append((level, message))

    @property
    def messages(self) -> list[str]:
        return [message for _, message in self.records]


class _SinkHandler(logging.Handler):
    def __init__(self, sink: LogSink) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            self.sink.log(record.levelno, message)
        except Exception:  # a logging call must never break the plugin
            self.handleError(record)


def sink_logger(name: str, sink: LogSink) -> logging.Logger:
    """A standalone ``logging.Logger`` (not in the global registry) writing to ``sink``."""
    logger = logging.Logger(name, logging.DEBUG)
    logger.propagate = False
    logger.addHandler(_SinkHandler(sink))
    return logger


def _default_logger() -> logging.Logger:
    return logging.getLogger("imbi.plugins")


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginContext:
    """Who is asking and with what settings.

    ``options`` are already merged and validated by the host; ``search_template`` is
    already expanded ("" if none). ``timeout`` is the seconds the call may take: pass it
    to your HTTP/SDK clients. ``storage`` is set only when the manifest declares
    ``permissions.storage``. ``service_settings`` are the non-secret per-tenant settings
    of the third-party service (account, region, base_url); credentials come separately.
    ``projects`` (contract 1.2) is set only when the manifest declares
    ``permissions.project_metadata``: read-only metadata of the current project and of the
    organization's other projects. An undeclared capability is ``None``.
    ``identity`` (contract 1.3) is set only when the manifest declares ``requires_identity``:
    the *calling user's* access token and claims for that identity plugin (an
    ``IdentityContext``; it crosses the wire beside the credentials, never in ``to_dict``).
    """

    organization: str
    project_id: int | None = None
    project_slug: str | None = None
    project_type: str | None = None
    tab: str = ""
    options: Mapping[str, object] = dataclasses.field(default_factory=dict)
    search_template: str = ""
    timeout: float = 10.0
    logger: logging.Logger = dataclasses.field(default_factory=_default_logger)
    storage: KeyValueStore | None = None
    service_settings: Mapping[str, object] = dataclasses.field(default_factory=dict)
    projects: ProjectMetadataReader | None = None
    identity: IdentityContext | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.organization, str) or not self.organization:
            raise ValueError("organization: must be a non-empty slug")
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float):
            raise ValueError("timeout: expected seconds as a number")
        if self.timeout <= 0:
            raise ValueError("timeout: must be > 0")
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))
        object.__setattr__(self, "service_settings", MappingProxyType(dict(self.service_settings)))
        if self.identity is not None and not isinstance(self.identity, IdentityContext):
            raise ValueError("identity: expected an IdentityContext or None")

    def to_dict(self) -> dict[str, Any]:
        """Everything but ``logger``, ``storage``, ``projects`` and ``identity`` (provided
        per side; the identity travels as ``Call.identity``, like credentials)."""
        return {
            "organization": self.organization,
            "project_id": self.project_id,
            "project_slug": self.project_slug,
            "project_type": self.project_type,
            "tab": self.tab,
            "options": dict(self.options),
            "search_template": self.search_template,
            "timeout": self.timeout,
            "service_settings": dict(self.service_settings),
        }

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        logger: logging.Logger | None = None,
        storage: KeyValueStore | None = None,
        projects: ProjectMetadataReader | None = None,
        identity: IdentityContext | None = None,
    ) -> PluginContext:
        """Rebuild a context; ``ValueError`` names the first field that does not fit."""
        if not isinstance(data, Mapping):
            raise ValueError("context: expected an object")
        unknown = sorted(set(data) - _CONTEXT_FIELDS)
        if unknown:
            raise ValueError(f"context: unknown field {unknown[0]!r}")
        for name in ("project_slug", "project_type"):
            if not isinstance(data.get(name), str | None):
                raise ValueError(f"context.{name}: expected a string or null")
        project_id = data.get("project_id")
        if project_id is not None and (
            isinstance(project_id, bool) or not isinstance(project_id, int)
        ):
            raise ValueError("context.project_id: expected an integer or null")
        for name in ("tab", "search_template"):
            if not isinstance(data.get(name, ""), str):
                raise ValueError(f"context.{name}: expected a string")
        for name in ("options", "service_settings"):
            if not isinstance(data.get(name, {}), Mapping):
                raise ValueError(f"context.{name}: expected an object")
        return cls(
            organization=data.get("organization", ""),
            project_id=project_id,
            project_slug=data.get("project_slug"),
            project_type=data.get("project_type"),
            tab=data.get("tab", ""),
            options=data.get("options", {}),
            search_template=data.get("search_template", ""),
            timeout=data.get("timeout", 10.0),
            logger=logger if logger is not None else _default_logger(),
            storage=storage,
            service_settings=data.get("service_settings", {}),
            projects=projects,
            identity=identity,
        )


_CONTEXT_FIELDS = frozenset(
    {
        "organization",
        "project_id",
        "project_slug",
        "project_type",
        "tab",
        "options",
        "search_template",
        "timeout",
        "service_settings",
    }
)
