"""The Logs tab from a CloudWatch Logs log group, with ``FilterLogEvents``.

The log group is the ``log_group`` option, or else the binding's expanded search template
(so one binding on a project type can serve ``/ecs/${project}`` for every project).

Query mapping (``build_plan``):

* typed filters and levels become one JSON filter pattern, conditions joined with
  ``&&`` inside a single ``{ }``: ``eq`` is ``$.f = "v"`` (a number or ``true``/``false``
  also matches the JSON number or boolean), ``ne`` is ``$.f != "v"``, ``contains`` is
  ``$.f = "*v*"``, ``starts_with`` is ``$.f = "v*"``, ``exists`` is ``$.f = *``; levels are
  ``($.level = "error" || $.level = "ERROR" || ...)`` on the ``level_field`` option.
  Values are quoted with ``\\`` and ``"`` escaped.
* what a pattern cannot express exactly is applied to the fetched events in the plugin,
  and says so in ``LogResult.warnings`` when it changes what the backend searches:
  ``regex`` filters (CloudWatch regex is a small subset), fields that are not plain
  ``a.b.c`` selectors, values containing the ``*`` wildcard (re-checked exactly) and the
  free text when typed filters are present (a pattern is either JSON or terms).
* free text alone is a quoted term pattern ``"text"`` (case sensitive, like CloudWatch).

Events come in ascending time order, as ``FilterLogEvents`` returns them. The cursor is
``base64url({"t": nextToken, "q": hash of the query without its window, "w": the request's
[startTime, endTime]})``: the next page asks CloudWatch with the token's own window, whatever
"the last N minutes" became meanwhile, and keeps the entries inside its own window; a cursor
from another query or an expired token is ``CursorExpired``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import re2
from imbi_plugin_sdk import (
    ConnectionResult,
    Credentials,
    CursorExpired,
    FilterOp,
    InvalidInput,
    JSONValue,
    LogEntry,
    LogFilter,
    LogLevel,
    LogQuery,
    LogResult,
    LogsPlugin,
    OptionField,
    Permissions,
    PluginContext,
    PluginError,
    PluginManifest,
    PluginType,
    RegexRejected,
    check_regex,
)

from . import PUBLISHER, SERVICE_TEMPLATE, TOGETHER, __version__
from .errors import translate_errors
from .session import CREDENTIAL_FIELDS, AwsClients

__all__ = [
    "CloudWatchLogs",
    "QueryPlan",
    "build_plan",
    "cursor_window",
    "decode_cursor",
    "encode_cursor",
    "parse_event",
    "quote",
]

MAX_PATTERN = 1024  # FilterLogEvents filterPattern limit
MAX_CALLS = 25  # FilterLogEvents calls per search (empty pages happen on sparse groups)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SELECTOR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_NUMBER_RE = re.compile(r"^-?(0|[1-9]\d*)(\.\d+)?$")
_LOG_GROUP_RE = re.compile(r"^[A-Za-z0-9_\-/.#]{1,512}$")
_LEVEL_ALIASES: Mapping[LogLevel, tuple[str, ...]] = {
    LogLevel.TRACE: ("trace",),
    LogLevel.DEBUG: ("debug",),
    LogLevel.INFO: ("info",),
    LogLevel.WARNING: ("warning", "warn"),
    LogLevel.ERROR: ("error",),
    LogLevel.CRITICAL: ("critical", "fatal"),
}
_PINO_LEVELS = {10: "trace", 20: "debug", 30: "info", 40: "warning", 50: "error", 60: "critical"}


# --------------------------------------------------------------------------- filter patterns


def quote(value: str) -> str:
    """``value`` as a double-quoted filter-pattern string (``\\`` and ``"`` escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclasses.dataclass(frozen=True, slots=True)
class QueryPlan:
    """What CloudWatch searches (``pattern``) and what the plugin re-checks itself."""

    pattern: str = ""
    local_filters: tuple[LogFilter, ...] = ()
    local_text: str = ""
    warnings: tuple[str, ...] = ()


def _level_condition(levels: Sequence[LogLevel], level_field: str) -> str:
    names: list[str] = []
    for level in dict.fromkeys(levels):
        for alias in _LEVEL_ALIASES[level]:
            for variant in (alias, alias.upper(), alias.capitalize()):
                if variant not in names:
                    names.append(variant)
    return "(" + " || ".join(f"$.{level_field} = {quote(name)}" for name in names) + ")"


def _condition(flt: LogFilter) -> str:
    selector = f"$.{flt.field}"
    value = flt.value
    match flt.op:
        case FilterOp.EQ:
            alternatives = [f"{selector} = {quote(value)}"]
            if _NUMBER_RE.match(value):
                alternatives.append(f"{selector} = {value}")
            elif value in ("true", "false"):
                alternatives.append(f"{selector} IS {value.upper()}")
            if len(alternatives) == 1:
                return alternatives[0]
            return "(" + " || ".join(alternatives) + ")"
        case FilterOp.NE:
            return f"{selector} != {quote(value)}"
        case FilterOp.CONTAINS:
            return f"{selector} = {quote(f'*{value}*')}"
        case FilterOp.STARTS_WITH:
            return f"{selector} = {quote(f'{value}*')}"
        case FilterOp.EXISTS:
            return f"{selector} = *"
    raise AssertionError(f"no pattern for {flt.op}")  # pragma: no cover - REGEX is local


def build_plan(query: LogQuery, level_field: str = "level") -> QueryPlan:
    """Map a query to a CloudWatch filter pattern plus the checks left to the plugin."""
    conditions: list[str] = []
    local: list[LogFilter] = []
    warnings: list[str] = []
    for flt in query.filters:
        if flt.op is FilterOp.REGEX:
            local.append(flt)
            warnings.append(
                f"regex filter on {flt.field} is applied to fetched events only; "
                "CloudWatch searched without it, so pages may hold fewer entries"
            )
            continue
        if not _SELECTOR_RE.match(flt.field):
            local.append(flt)
            warnings.append(
                f"field {flt.field} cannot be used in a CloudWatch pattern; it is applied "
                "to fetched events only"
            )
            continue
        if "*" in flt.value:
            # "*" is a wildcard in patterns and cannot be escaped: search wide, check exactly.
            local.append(flt)
            if flt.op is FilterOp.NE:
                continue  # a wildcard != would exclude too much
        conditions.append(_condition(flt))
    if query.levels:
        if not _SELECTOR_RE.match(level_field):
            raise InvalidInput(
                "the level_field option is not a valid JSON field",
                fields={"level_field": "use letters, digits, _ and ."},
            )
        conditions.append(_level_condition(query.levels, level_field))
    text = query.text.strip()
    local_text = ""
    if conditions:
        pattern = "{ " + " && ".join(conditions) + " }"
        if text:
            local_text = text
            warnings.append(
                "free text is applied to fetched events only when typed filters or levels "
                "are used; pages may hold fewer entries"
            )
    else:
        pattern = quote(text) if text else ""
    if len(pattern) > MAX_PATTERN:
        raise InvalidInput(
            "the filters are too long for a CloudWatch filter pattern",
            fields={"filters": f"the pattern must be at most {MAX_PATTERN} characters"},
        )
    return QueryPlan(
        pattern=pattern,
        local_filters=tuple(local),
        local_text=local_text,
        warnings=tuple(warnings),
    )


# --------------------------------------------------------------------------- local checks


def _lookup(fields: Mapping[str, JSONValue], name: str) -> tuple[bool, JSONValue]:
    """``(present, value)`` of ``name``: a flat key first, then a dotted path."""
    if name in fields:
        return True, fields[name]
    current: JSONValue = dict(fields)
    for part in name.split("."):
        if not isinstance(current, dict) or part not in current:
            return False, None
        current = current[part]
    return True, current


def _as_text(value: JSONValue) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _matches(entry: LogEntry, raw: str, plan: QueryPlan, regexes: Mapping[str, Any]) -> bool:
    if plan.local_text and plan.local_text not in raw:
        return False
    for flt in plan.local_filters:
        present, value = _lookup(entry.fields, flt.field)
        if not present:
            return False  # as in CloudWatch, a condition on a missing field fails
        if not _check(flt, _as_text(value), regexes):
            return False
    return True


def _check(flt: LogFilter, text: str, regexes: Mapping[str, Any]) -> bool:
    match flt.op:
        case FilterOp.EQ:
            return text == flt.value
        case FilterOp.NE:
            return text != flt.value
        case FilterOp.CONTAINS:
            return flt.value in text
        case FilterOp.STARTS_WITH:
            return text.startswith(flt.value)
        case FilterOp.REGEX:
            return regexes[flt.value].search(text) is not None
    return True  # EXISTS: the field is present


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.max_mem = 8 << 20  # bytes of compiled program per pattern
_RE2_OPTIONS.log_errors = False


def _compile(plan: QueryPlan) -> dict[str, Any]:
    """Regex filters shape-checked by the SDK, then compiled for google-re2 (linear time)."""
    compiled: dict[str, Any] = {}
    for flt in plan.local_filters:
        if flt.op is FilterOp.REGEX and flt.value not in compiled:
            check_regex(flt.value, field="filters")
            try:
                compiled[flt.value] = re2.compile(flt.value, _RE2_OPTIONS)
            except re2.error:
                raise RegexRejected.unsupported("filters") from None
    return compiled


# --------------------------------------------------------------------------- events


def _refuse_constant(name: str) -> object:
    raise ValueError(name)


def _level(value: object) -> LogLevel | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = _PINO_LEVELS.get(value)
    if not isinstance(value, str):
        return None
    try:
        return LogLevel(value.strip())
    except ValueError:
        return None


def parse_event(event: Mapping[str, Any]) -> LogEntry:
    """A ``FilterLogEvents`` event as a ``LogEntry`` (JSON messages become fields)."""
    timestamp = EPOCH + timedelta(milliseconds=int(event.get("timestamp", 0)))
    raw = str(event.get("message", "")).rstrip("\r\n")
    stream = str(event.get("logStreamName", ""))
    decoded: object = None
    if raw.lstrip().startswith("{"):
        try:
            decoded = json.loads(raw, parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            decoded = None
    if isinstance(decoded, dict):
        fields: dict[str, Any] = dict(decoded)
        fields.setdefault("logStreamName", stream)
        level = None
        for name in ("level", "severity", "levelname"):
            level = _level(fields.get(name))
            if level is not None:
                break
        message = raw
        for name in ("message", "msg"):
            if isinstance(fields.get(name), str):
                message = fields[name]
                break
        return LogEntry(timestamp=timestamp, message=message, level=level, fields=fields)
    return LogEntry(timestamp=timestamp, message=raw, fields={"logStreamName": stream})


# --------------------------------------------------------------------------- cursors


def _query_hash(query: LogQuery, log_group: str, stream_prefix: str, plan: QueryPlan) -> str:
    scope = {
        "g": log_group,
        "s": stream_prefix,
        "p": plan.pattern,
        "f": [flt.to_dict() for flt in plan.local_filters],
        "x": plan.local_text,
    }
    digest = hashlib.sha256(json.dumps(scope, sort_keys=True).encode()).hexdigest()
    return digest[:16]


def encode_cursor(token: str, query_hash: str, window: tuple[int, int] | None = None) -> str:
    """``window``: the ``startTime``/``endTime`` (ms) the token was issued for; the next page
    asks CloudWatch with those, whatever window the platform recomputed meanwhile."""
    data: dict[str, Any] = {"t": token, "q": query_hash}
    if window is not None:
        data["w"] = list(window)
    payload = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def cursor_window(cursor: str) -> tuple[int, int] | None:
    """The request window a cursor's token belongs to (``None`` if it carries none)."""
    try:
        data = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
        start, end = data["w"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    valid = all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (start, end))
    return (start, end) if valid and start <= end else None


def decode_cursor(cursor: str, query_hash: str) -> str:
    """The CloudWatch ``nextToken`` in ``cursor``; ``CursorExpired`` if not this query's."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        token, owner = data["t"], data["q"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise CursorExpired("the cursor is not valid; start the search again") from None
    if not isinstance(token, str) or not token or owner != query_hash:
        raise CursorExpired("the cursor belongs to a different search; start again")
    return token


# --------------------------------------------------------------------------- handler


def _ms_ceil(moment: datetime) -> int:
    return -((EPOCH - moment) // timedelta(milliseconds=1))


def _ms_floor(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


class CloudWatchLogs(LogsPlugin):
    """Searches one log group with ``FilterLogEvents``."""

    manifest = PluginManifest(
        slug="aws-cloudwatch-logs",
        name="AWS CloudWatch Logs",
        description="Log events from an Amazon CloudWatch Logs log group, searched with "
        "filter patterns. JSON log lines become structured fields.",
        version=__version__,
        api_version="1.0",
        plugin_type=PluginType.LOGS,
        publisher=PUBLISHER,
        options=(
            OptionField(
                name="log_group",
                label="Log group",
                default="",
                help="Log group name, e.g. /ecs/billing. Empty: the binding's search "
                "template is used, e.g. /ecs/${project}.",
                operator_only=True,  # it selects whose logs are read: never per project
            ),
            OptionField(
                name="log_stream_prefix",
                label="Log stream prefix",
                default="",
                help="Only search log streams whose name starts with this.",
            ),
            OptionField(
                name="level_field",
                label="Level field",
                default="level",
                help="The JSON field holding the log level, used by level filters.",
            ),
        ),
        credentials=CREDENTIAL_FIELDS,
        permissions=Permissions(network_hosts=("*.amazonaws.com",)),
        service_template=SERVICE_TEMPLATE,
        together=TOGETHER,
    )

    def __init__(self, context: PluginContext, credentials: Credentials) -> None:
        super().__init__(context, credentials)
        self._aws = AwsClients(context, credentials)

    def _option(self, name: str) -> str:
        value = self.context.options.get(name)
        return value.strip() if isinstance(value, str) else ""

    @property
    def _log_group(self) -> str:
        group = self._option("log_group") or self.context.search_template.strip()
        if not group:
            raise InvalidInput(
                "the binding needs a log group: set the log_group option or a search "
                "template such as /ecs/${project}",
                fields={"log_group": "is required (or a search template)"},
            )
        if not _LOG_GROUP_RE.match(group):
            raise InvalidInput(
                "the log group name is not valid",
                fields={"log_group": "use letters, digits and _ - / . # (1-512)"},
            )
        return group

    def _logs(self) -> Any:
        return self._aws.client("logs")

    def test_connection(self) -> ConnectionResult:
        try:
            group = self._log_group
            with translate_errors(f"log group {group}"):
                answer = self._logs().describe_log_groups(logGroupNamePrefix=group, limit=50)
        except PluginError as exc:
            return ConnectionResult.problem(str(exc), error=exc.code)
        names = [item.get("logGroupName") for item in answer.get("logGroups", [])]
        if group not in names:
            return ConnectionResult.problem(
                f"log group {group} was not found in {self._aws.config.region_name}",
                log_group=group,
            )
        return ConnectionResult.success(
            f"log group {group} is readable",
            log_group=group,
            region=str(self._aws.config.region_name or ""),
        )

    def search(self, query: LogQuery) -> LogResult:
        group = self._log_group
        stream_prefix = self._option("log_stream_prefix")
        plan = build_plan(query, self._option("level_field") or "level")
        regexes = _compile(plan)
        query_hash = _query_hash(query, group, stream_prefix, plan)
        token = decode_cursor(query.cursor, query_hash) if query.cursor else None
        # A token belongs to the window it was issued for; this page's entries are still only
        # those inside this page's [start, end] (the filter below).
        anchored = cursor_window(query.cursor) if query.cursor else None
        start_ms, end_ms = anchored or (_ms_ceil(query.start), _ms_floor(query.end))

        request: dict[str, Any] = {
            "logGroupName": group,
            "startTime": start_ms,
            "endTime": end_ms,
        }
        if plan.pattern:
            request["filterPattern"] = plan.pattern
        if stream_prefix:
            request["logStreamNamePrefix"] = stream_prefix

        entries: list[LogEntry] = []
        warnings = list(plan.warnings)
        deadline = time.monotonic() + self.context.timeout * 0.8
        for calls in range(1, MAX_CALLS + 1):
            page = dict(request, limit=query.limit - len(entries))
            if token:
                page["nextToken"] = token
            with translate_errors(f"log group {group}"):
                answer = self._logs().filter_log_events(**page)
            for event in answer.get("events", []):
                entry = parse_event(event)
                if not query.start <= entry.timestamp <= query.end:
                    continue
                if _matches(entry, str(event.get("message", "")), plan, regexes):
                    entries.append(entry)
            token = answer.get("nextToken") or None
            if token is None or len(entries) >= query.limit:
                break
            if time.monotonic() > deadline or calls == MAX_CALLS:
                warnings.append(
                    "CloudWatch has not finished searching the time range; load more to continue"
                )
                break
        cursor = encode_cursor(token, query_hash, (start_ms, end_ms)) if token else None
        return LogResult(
            entries=tuple(entries[: query.limit]), next_cursor=cursor, warnings=tuple(warnings)
        )
