"""Request and response models exchanged between the host and a plugin.

Owns the configuration models (``ConfigKey``, ``ConfigValue``, ``ConfigWrite``), the logs
models (``LogQuery``, ``LogEntry``, ``LogResult``, ``Histogram``) and ``ConnectionResult``.
Each validates on construction (raising ``InvalidInput`` naming the field) and has a
lossless JSON-safe ``to_dict()`` / ``from_dict()`` round trip. Datetimes are always
timezone-aware UTC (naive ones are refused) and travel as ISO 8601 strings.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NoReturn, Self, TypeAlias

from .errors import InvalidInput

__all__ = [
    "ConfigKey",
    "ConfigValue",
    "ConfigWrite",
    "ConnectionResult",
    "DataType",
    "FilterOp",
    "Histogram",
    "HistogramBucket",
    "JSONValue",
    "LogEntry",
    "LogFilter",
    "LogLevel",
    "LogQuery",
    "LogResult",
    "validate_config_key",
]

JSONValue: TypeAlias = str | int | float | bool | dict[str, "JSONValue"] | list["JSONValue"] | None

_FIELD_NAME_RE = re.compile(r"^[A-Za-z_@][A-Za-z0-9_.@-]{0,127}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


# --------------------------------------------------------------------------- helpers


def _invalid(path: str, message: str) -> NoReturn:
    raise InvalidInput(f"{path}: {message}", fields={path: message})


def _set(obj: object, name: str, value: object) -> None:
    """Assign during ``__post_init__`` of a frozen dataclass (normalising a field)."""
    object.__setattr__(obj, name, value)


def _enum(kind: type[Any], value: object, path: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        _invalid(path, f"{value!r} is not one of {', '.join(m.value for m in kind)}")


def _aware(value: object, path: str) -> datetime:
    """A timezone-aware datetime, normalised to UTC."""
    if not isinstance(value, datetime):
        _invalid(path, f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        _invalid(path, "naive datetime; use a timezone-aware (UTC) datetime")
    return value.astimezone(UTC)


def _dt_out(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt_in(value: object, path: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        _invalid(path, "expected an ISO 8601 string")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        _invalid(path, "not an ISO 8601 datetime")


def _need(data: Mapping[str, Any], key: str, kind: str) -> Any:
    if not isinstance(data, Mapping):
        _invalid(kind, "expected an object")
    if key not in data:
        _invalid(key, f"is required in {kind}")
    return data[key]


def _need_dt(data: Mapping[str, Any], key: str, kind: str) -> datetime:
    value = _dt_in(_need(data, key, kind), key)
    if value is None:
        _invalid(key, "is required")
    return value


def _str(value: object, path: str) -> str:
    if not isinstance(value, str):
        _invalid(path, f"expected a string, got {type(value).__name__}")
    return value


def _bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        _invalid(path, f"expected a boolean, got {type(value).__name__}")
    return value


def _int(value: object, path: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _invalid(path, f"expected an integer, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        _invalid(path, f"must be between {low} and {high}" if high else f"must be >= {low}")
    return value


def _seq(value: object, path: str) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        _invalid(path, f"expected a list, got {type(value).__name__}")
    return tuple(value)


def _json(value: object, path: str) -> None:
    """Refuse anything ``json.dumps`` would reject or change (tuples, NaN, int keys)."""
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            _invalid(path, "numbers must be finite")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _json(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                _invalid(path, "object keys must be strings")
            _json(item, f"{path}.{key}")
        return
    _invalid(path, f"{type(value).__name__} is not a JSON value")


def _json_mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        _invalid(path, "expected a mapping")
    plain = dict(value)
    _json(plain, path)
    return MappingProxyType(plain)


def validate_config_key(key: object, path: str = "key") -> str:
    """A configuration key: 1-255 chars, no control chars, no surrounding whitespace."""
    key = _str(key, path)
    if not 1 <= len(key) <= 255:
        _invalid(path, "must be 1-255 characters")
    if _CONTROL_RE.search(key):
        _invalid(path, "must not contain control characters")
    if key != key.strip():
        _invalid(path, "must not start or end with whitespace")
    return key


# --------------------------------------------------------------------------- configuration


class DataType(StrEnum):
    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    JSON = "json"
    SECRET = "secret"  # noqa: S105 - a type name, not a secret


def _check_value(data_type: DataType, value: object, path: str = "value") -> None:
    """``value`` fits ``data_type``; ``None`` is checked by the caller."""
    match data_type:
        case DataType.STRING | DataType.SECRET:
            ok = isinstance(value, str)
        case DataType.NUMBER:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if ok and isinstance(value, float) and not math.isfinite(value):
                _invalid(path, "numbers must be finite")
        case DataType.BOOLEAN:
            ok = isinstance(value, bool)
        case DataType.JSON:
            _json(value, path)
            ok = True
    if not ok:
        _invalid(path, f"{type(value).__name__} does not match data_type {data_type}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigKey:
    """A key as listed, without its value. A ``secret`` data type implies ``secret``."""

    key: str
    data_type: DataType = DataType.STRING
    secret: bool = False
    last_modified: datetime | None = None

    def __post_init__(self) -> None:
        validate_config_key(self.key)
        _set(self, "data_type", _enum(DataType, self.data_type, "data_type"))
        _set(self, "secret", _bool(self.secret, "secret") or self.data_type is DataType.SECRET)
        if self.last_modified is not None:
            _set(self, "last_modified", _aware(self.last_modified, "last_modified"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "data_type": self.data_type.value,
            "secret": self.secret,
            "last_modified": _dt_out(self.last_modified),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            key=_need(data, "key", cls.__name__),
            data_type=data.get("data_type", DataType.STRING),
            secret=data.get("secret", False),
            last_modified=_dt_in(data.get("last_modified"), "last_modified"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigValue:
    """A key with its value. ``value`` is ``None`` when unknown or masked."""

    key: str
    data_type: DataType = DataType.STRING
    value: JSONValue = None
    secret: bool = False
    last_modified: datetime | None = None

    def __post_init__(self) -> None:
        validate_config_key(self.key)
        _set(self, "data_type", _enum(DataType, self.data_type, "data_type"))
        _set(self, "secret", _bool(self.secret, "secret") or self.data_type is DataType.SECRET)
        if self.value is not None:
            _check_value(self.data_type, self.value)
        if self.last_modified is not None:
            _set(self, "last_modified", _aware(self.last_modified, "last_modified"))

    def masked(self) -> ConfigValue:
        """The value hidden when secret (what the host shows by default)."""
        return dataclasses.replace(self, value=None) if self.secret else self

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "data_type": self.data_type.value,
            "value": self.value,
            "secret": self.secret,
            "last_modified": _dt_out(self.last_modified),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            key=_need(data, "key", cls.__name__),
            data_type=data.get("data_type", DataType.STRING),
            value=data.get("value"),
            secret=data.get("secret", False),
            last_modified=_dt_in(data.get("last_modified"), "last_modified"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigWrite:
    """The input of ``set_value``. Only ``json`` may carry ``None`` (JSON null)."""

    data_type: DataType
    value: JSONValue
    secret: bool = False

    def __post_init__(self) -> None:
        _set(self, "data_type", _enum(DataType, self.data_type, "data_type"))
        _set(self, "secret", _bool(self.secret, "secret") or self.data_type is DataType.SECRET)
        if self.value is None and self.data_type is not DataType.JSON:
            _invalid("value", "is required")
        _check_value(self.data_type, self.value)

    def to_dict(self) -> dict[str, Any]:
        return {"data_type": self.data_type.value, "value": self.value, "secret": self.secret}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            data_type=_need(data, "data_type", cls.__name__),
            value=_need(data, "value", cls.__name__),
            secret=data.get("secret", False),
        )


# --------------------------------------------------------------------------- logs


class FilterOp(StrEnum):
    EQ = "eq"
    NE = "ne"
    CONTAINS = "contains"
    STARTS_WITH = "starts_with"
    REGEX = "regex"
    EXISTS = "exists"


class LogLevel(StrEnum):
    """Normalised level; parsing also accepts ``warn``, ``fatal`` and any case."""

    TRACE = "trace"
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @classmethod
    def _missing_(cls, value: object) -> LogLevel | None:
        if not isinstance(value, str):
            return None
        text = {"warn": "warning", "fatal": "critical"}.get(value.lower(), value.lower())
        return cls(text) if text in cls._value2member_map_ else None


@dataclass(frozen=True, slots=True, kw_only=True)
class LogFilter:
    """``field op value``; ``value`` may be empty only for ``exists``."""

    field: str
    op: FilterOp = FilterOp.EQ
    value: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.field, str) or not _FIELD_NAME_RE.match(self.field):
            _invalid("field", f"{self.field!r} is not a valid field name")
        _set(self, "op", _enum(FilterOp, self.op, "op"))
        _str(self.value, "value")
        if not self.value and self.op is not FilterOp.EXISTS:
            _invalid("value", f"is required for {self.op}")

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "op": self.op.value, "value": self.value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            field=_need(data, "field", cls.__name__),
            op=data.get("op", FilterOp.EQ),
            value=data.get("value", ""),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LogQuery:
    """A search over ``[start, end]``; ``cursor`` continues a previous result."""

    start: datetime
    end: datetime
    filters: tuple[LogFilter, ...] = ()
    levels: tuple[LogLevel, ...] = ()
    text: str = ""
    limit: int = 100
    cursor: str | None = None

    def __post_init__(self) -> None:
        _set(self, "start", _aware(self.start, "start"))
        _set(self, "end", _aware(self.end, "end"))
        if self.end <= self.start:
            _invalid("end", "must be after start")
        filters = _seq(self.filters, "filters")
        for index, item in enumerate(filters):
            if not isinstance(item, LogFilter):
                _invalid(f"filters[{index}]", "expected a LogFilter")
        _set(self, "filters", filters)
        _set(
            self,
            "levels",
            tuple(
                _enum(LogLevel, level, f"levels[{i}]")
                for i, level in enumerate(_seq(self.levels, "levels"))
            ),
        )
        _str(self.text, "text")
        _int(self.limit, "limit", 1, 1000)
        if self.cursor is not None:
            _str(self.cursor, "cursor")

    @classmethod
    def ending_now(cls, window: timedelta = timedelta(hours=1), **kwargs: Any) -> LogQuery:
        """A query over the last ``window`` (default: the last hour)."""
        end = datetime.now(UTC)
        return cls(start=end - window, end=end, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": _dt_out(self.start),
            "end": _dt_out(self.end),
            "filters": [item.to_dict() for item in self.filters],
            "levels": [level.value for level in self.levels],
            "text": self.text,
            "limit": self.limit,
            "cursor": self.cursor,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            start=_need_dt(data, "start", cls.__name__),
            end=_need_dt(data, "end", cls.__name__),
            filters=tuple(
                LogFilter.from_dict(item) for item in _seq(data.get("filters", []), "filters")
            ),
            levels=_seq(data.get("levels", []), "levels"),
            text=data.get("text", ""),
            limit=data.get("limit", 100),
            cursor=data.get("cursor"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LogEntry:
    """One log line; ``fields`` holds the structured attributes (JSON values)."""

    timestamp: datetime
    message: str
    level: LogLevel | None = None
    fields: Mapping[str, JSONValue] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        _set(self, "timestamp", _aware(self.timestamp, "timestamp"))
        _str(self.message, "message")
        if self.level is not None:
            _set(self, "level", _enum(LogLevel, self.level, "level"))
        _set(self, "fields", _json_mapping(self.fields, "fields"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "timestamp": _dt_out(self.timestamp),
            "level": self.level.value if self.level else None,
            "message": self.message,
            "fields": dict(self.fields),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            timestamp=_need_dt(data, "timestamp", cls.__name__),
            message=_need(data, "message", cls.__name__),
            level=data.get("level"),
            fields=data.get("fields", {}),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LogResult:
    """One page of entries; ``next_cursor`` is ``None`` on the last page."""

    entries: tuple[LogEntry, ...] = ()
    next_cursor: str | None = None
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        entries = _seq(self.entries, "entries")
        for index, entry in enumerate(entries):
            if not isinstance(entry, LogEntry):
                _invalid(f"entries[{index}]", "expected a LogEntry")
        _set(self, "entries", entries)
        if self.next_cursor is not None:
            _str(self.next_cursor, "next_cursor")
        warnings = _seq(self.warnings, "warnings")
        for index, warning in enumerate(warnings):
            _str(warning, f"warnings[{index}]")
        _set(self, "warnings", warnings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "entries": [entry.to_dict() for entry in self.entries],
            "next_cursor": self.next_cursor,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            entries=tuple(
                LogEntry.from_dict(item) for item in _seq(data.get("entries", []), "entries")
            ),
            next_cursor=data.get("next_cursor"),
            warnings=_seq(data.get("warnings", []), "warnings"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class HistogramBucket:
    """How many entries fall in ``[start, end)``."""

    start: datetime
    end: datetime
    count: int

    def __post_init__(self) -> None:
        _set(self, "start", _aware(self.start, "start"))
        _set(self, "end", _aware(self.end, "end"))
        if self.end <= self.start:
            _invalid("end", "must be after start")
        _int(self.count, "count", 0)

    def to_dict(self) -> dict[str, Any]:
        return {"start": _dt_out(self.start), "end": _dt_out(self.end), "count": self.count}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            start=_need_dt(data, "start", cls.__name__),
            end=_need_dt(data, "end", cls.__name__),
            count=_need(data, "count", cls.__name__),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Histogram:
    """Entry counts over time, buckets ascending and not overlapping."""

    buckets: tuple[HistogramBucket, ...] = ()

    def __post_init__(self) -> None:
        buckets = _seq(self.buckets, "buckets")
        for index, bucket in enumerate(buckets):
            if not isinstance(bucket, HistogramBucket):
                _invalid(f"buckets[{index}]", "expected a HistogramBucket")
            if index and bucket.start < buckets[index - 1].end:
                _invalid(f"buckets[{index}]", "buckets must be ascending and not overlap")
        _set(self, "buckets", buckets)

    def to_dict(self) -> dict[str, Any]:
        return {"buckets": [bucket.to_dict() for bucket in self.buckets]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            buckets=tuple(
                HistogramBucket.from_dict(item)
                for item in _seq(_need(data, "buckets", cls.__name__), "buckets")
            )
        )


# --------------------------------------------------------------------------- connection


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionResult:
    """The outcome of ``test_connection``; ``details`` are short non-secret facts."""

    ok: bool
    message: str = ""
    details: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        _bool(self.ok, "ok")
        _str(self.message, "message")
        if not isinstance(self.details, Mapping):
            _invalid("details", "expected a mapping")
        for key, value in self.details.items():
            _str(key, "details")
            _str(value, f"details.{key}")
        _set(self, "details", MappingProxyType(dict(self.details)))

    @classmethod
    def success(cls, message: str = "", **details: str) -> ConnectionResult:
        return cls(ok=True, message=message, details=details)

    @classmethod
    def problem(cls, message: str, **details: str) -> ConnectionResult:
        return cls(ok=False, message=message, details=details)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "message": self.message, "details": dict(self.details)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            ok=_need(data, "ok", cls.__name__),
            message=data.get("message", ""),
            details=data.get("details", {}),
        )
