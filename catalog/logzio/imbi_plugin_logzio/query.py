"""From an SDK ``LogQuery`` to a Logz.io (Elasticsearch DSL) search body, and back.

Typed filters become typed clauses (``match_phrase``, ``wildcard``, ``prefix``, ...), so a
value is sent as JSON and never spliced into a Lucene string: colons, quotes and
parentheses in values need no escaping. Only the admin-written query prefix and search
template are Lucene ``query_string`` clauses. Paging uses ``search_after`` with the sort
values of the last hit; the cursor carries them plus a fingerprint of the query.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from imbi_plugin_sdk import CursorExpired, FilterOp, JSONValue, LogLevel, LogQuery

TIMESTAMP_FIELD = "@timestamp"
MAX_PAGE_SIZE = 1000
SORT: list[dict[str, str]] = [{TIMESTAMP_FIELD: "desc"}, {"_id": "desc"}]
"""Newest first; ``_id`` breaks ties so ``search_after`` never skips or repeats a hit."""

_CURSOR_VERSION = 1

# Every spelling of a level we look for in the level field (terms are exact matches).
_LEVEL_NAMES: Mapping[LogLevel, tuple[str, ...]] = {
    LogLevel.TRACE: ("trace",),
    LogLevel.DEBUG: ("debug",),
    LogLevel.INFO: ("info", "information"),
    LogLevel.WARNING: ("warning", "warn"),
    LogLevel.ERROR: ("error", "err"),
    LogLevel.CRITICAL: ("critical", "fatal", "crit"),
}


@dataclass(frozen=True, slots=True)
class Fields:
    """Where a document keeps its level and message (binding options)."""

    level: str = "level"
    message: str = "message"


# --------------------------------------------------------------------------- escaping


def escape_wildcard(value: str) -> str:
    """Escape the Elasticsearch ``wildcard`` metacharacters ``\\``, ``*`` and ``?``."""
    return re.sub(r"([\\*?])", r"\\\1", value)


def escape_simple_query(text: str) -> str:
    """Escape ``simple_query_string`` operators so free text is matched literally.

    Whitespace still separates words; every word must match (``default_operator: and``).
    """
    return re.sub(r'([+|\-"*()~\\])', r"\\\1", text)


def es_time(moment: datetime, *, round_up: bool = False) -> str:
    """``moment`` as ISO 8601 UTC with milliseconds (Elasticsearch ``date`` precision).

    The start of a range is rounded up and the end down, so every hit lies inside it.
    """
    moment = moment.astimezone(UTC)
    millis = moment.replace(microsecond=(moment.microsecond // 1000) * 1000)
    if round_up and millis < moment:
        millis += timedelta(milliseconds=1)
    return millis.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis.microsecond // 1000:03d}Z"


def level_terms(levels: tuple[LogLevel, ...]) -> list[str]:
    """Every spelling (lower, UPPER, Title) of every alias of ``levels``, sorted."""
    names = {
        variant
        for level in levels
        for name in _LEVEL_NAMES[level]
        for variant in (name, name.upper(), name.capitalize())
    }
    return sorted(names)


# --------------------------------------------------------------------------- body


def build_bool(
    query: LogQuery,
    *,
    fields: Fields,
    search_template: str = "",
    query_prefix: str = "",
) -> dict[str, Any]:
    """The ``{"bool": ...}`` query of ``query`` (time range, filters, levels, text)."""
    must: list[dict[str, Any]] = []
    must_not: list[dict[str, Any]] = []
    filters: list[dict[str, Any]] = [
        {
            "range": {
                TIMESTAMP_FIELD: {
                    "gte": es_time(query.start, round_up=True),
                    "lte": es_time(query.end),
                }
            }
        }
    ]
    for lucene in (query_prefix.strip(), search_template.strip()):
        if lucene:
            must.append({"query_string": {"query": lucene, "default_operator": "AND"}})
    if query.text.strip():
        must.append(
            {
                "simple_query_string": {
                    "query": escape_simple_query(query.text.strip()),
                    "fields": [fields.message],
                    "default_operator": "and",
                }
            }
        )
    if query.levels:
        filters.append({"terms": {fields.level: level_terms(query.levels)}})
    for item in query.filters:
        field, value = item.field, item.value
        match item.op:
            case FilterOp.EQ:
                filters.append({"match_phrase": {field: value}})
            case FilterOp.NE:
                must_not.append({"match_phrase": {field: value}})
            case FilterOp.CONTAINS:
                filters.append({"wildcard": {field: {"value": f"*{escape_wildcard(value)}*"}}})
            case FilterOp.STARTS_WITH:
                filters.append({"prefix": {field: {"value": value}}})
            case FilterOp.REGEX:
                filters.append({"regexp": {field: {"value": value}}})
            case FilterOp.EXISTS:
                filters.append({"exists": {"field": field}})
    return {"bool": {"must": must, "must_not": must_not, "filter": filters}}


def build_body(
    query: LogQuery,
    *,
    fields: Fields,
    search_template: str = "",
    query_prefix: str = "",
) -> dict[str, Any]:
    """The full search body, ``search_after`` included when ``query.cursor`` is set."""
    bool_query = build_bool(
        query, fields=fields, search_template=search_template, query_prefix=query_prefix
    )
    body: dict[str, Any] = {
        "query": bool_query,
        "size": min(query.limit, MAX_PAGE_SIZE),
        "sort": SORT,
    }
    if query.cursor is not None:
        body["search_after"] = decode_cursor(query.cursor, fingerprint(bool_query))
    return body


# --------------------------------------------------------------------------- cursor


def fingerprint(bool_query: Mapping[str, Any]) -> str:
    """A short hash of the query and sort order without its time range: a cursor is only
    valid for these, whatever window the next page asks for (the platform recomputes "the
    last N minutes" for every page; ``search_after`` says where the next page starts)."""
    inner = dict(bool_query.get("bool", {})) if isinstance(bool_query, Mapping) else {}
    inner["filter"] = [
        clause
        for clause in inner.get("filter", [])
        if not (isinstance(clause, Mapping) and "range" in clause)
    ]
    canonical = json.dumps(
        {"query": {"bool": inner}, "sort": SORT}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def encode_cursor(sort_values: list[Any], query_fingerprint: str) -> str:
    payload = {"v": _CURSOR_VERSION, "q": query_fingerprint, "after": sort_values}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _sort_value(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int)


def decode_cursor(cursor: str, query_fingerprint: str) -> list[Any]:
    """The ``search_after`` values in ``cursor``; ``CursorExpired`` unless it is ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise CursorExpired("the cursor is not a Logz.io cursor") from None
    if not isinstance(payload, dict) or payload.get("v") != _CURSOR_VERSION:
        raise CursorExpired("the cursor is not a Logz.io cursor")
    if payload.get("q") != query_fingerprint:
        raise CursorExpired("the cursor belongs to a different search; start again")
    after = payload.get("after")
    if (
        not isinstance(after, list)
        or len(after) != len(SORT)
        or not all(_sort_value(value) for value in after)
    ):
        raise CursorExpired("the cursor is not a Logz.io cursor")
    return after


# --------------------------------------------------------------------------- hits


def lookup(source: Mapping[str, Any], field: str) -> tuple[bool, Any]:
    """``(found, value)`` of ``field`` in ``source``: a flat key, else a dotted path."""
    if field in source:
        return True, source[field]
    node: Any = source
    for part in field.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def parse_timestamp(value: object, sort_values: object = None) -> datetime | None:
    """An aware UTC datetime from ``@timestamp`` (ISO 8601 or epoch millis).

    Falls back to the first sort value, which Elasticsearch gives as epoch millis.
    """
    if isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            moment = None
        if moment is not None:
            if moment.tzinfo is None or moment.utcoffset() is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.astimezone(UTC)
    candidates = [value]
    if isinstance(sort_values, list) and sort_values:
        candidates.append(sort_values[0])
    for candidate in candidates:
        if isinstance(candidate, bool) or not isinstance(candidate, int | float):
            continue
        try:
            return datetime.fromtimestamp(candidate / 1000, UTC)
        except (OverflowError, OSError, ValueError):  # NaN, inf, out of range
            continue
    return None


def parse_level(raw: object) -> LogLevel | None:
    """A level from any spelling we search for (``WARN``, ``err``, ``Fatal``...)."""
    if not isinstance(raw, str):
        return None
    text = raw.strip().lower()
    for level, names in _LEVEL_NAMES.items():
        if text in names:
            return level
    return None


def json_safe(value: Any) -> JSONValue:
    """``value`` as a JSON value the SDK accepts (non-finite floats become strings)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return str(value)


__all__ = [
    "MAX_PAGE_SIZE",
    "SORT",
    "TIMESTAMP_FIELD",
    "Fields",
    "build_body",
    "build_bool",
    "decode_cursor",
    "encode_cursor",
    "es_time",
    "escape_simple_query",
    "escape_wildcard",
    "fingerprint",
    "json_safe",
    "level_terms",
    "lookup",
    "parse_level",
    "parse_timestamp",
]
