"""``local-logs``: a project's logs read from a JSON-lines file on the Imbi host.

Owns ``LocalLogs``. The file is ``<directory>/<name>.jsonl`` where ``directory`` is the
``directory`` option or, when empty, the service's ``directory`` setting, and ``name`` is the
expanded search template or, without one, the project slug. The resolved path must stay
inside the resolved directory (no ``..``, absolute names or symlinks out): anything else is
``InvalidInput``.

Isolated (a sandboxed runner), the plugin reads only the directory in the service's
``directory`` setting: the manifest declares ``permissions.operator_path_settings =
("directory",)`` (contract 1.2), and the host grants that one directory read-only once an
admin approved the permission, enforcing ``IMBI_PLUGIN_PATH_ROOT`` itself (the runner's
environment carries no ``$IMBI_LOCAL_LOGS_ROOT``). A per-binding ``directory`` option that
points elsewhere is not granted: the kernel refuses the read, reported as ``PermissionDenied``
naming the option. In-process, the plugin checks ``$IMBI_LOCAL_LOGS_ROOT`` as before.

Each line is a JSON object ``{"timestamp": ISO 8601, "level": ..., "message": ..., ...}``;
every other top-level key becomes a field. A timestamp without a zone is taken as UTC. Lines
that are not such an object are skipped and counted in a warning; a missing file is an empty
result with a warning, not an error.

Search semantics: ``[start, end]`` inclusive; ``levels`` match the normalised level; ``text``
matches the message or any field value, case-insensitively; filters compare the stringified
top-level value (strings as-is, anything else as compact JSON; ``null`` counts as absent).
Results are newest first. The cursor is opaque: the offset of the next page, the first page's
end (later entries never shift the offsets) and a hash of the query without its time window
(filters, levels, text, file), so a cursor from another query is refused with
``CursorExpired`` while "the last N minutes", recomputed for every page, pages on.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import re2
from imbi_plugin_sdk import (
    MAX_REGEX_LENGTH,
    ConnectionResult,
    CursorExpired,
    FilterOp,
    Hints,
    Histogram,
    HistogramBucket,
    InvalidInput,
    JSONValue,
    LogEntry,
    LogFilter,
    LogLevel,
    LogQuery,
    LogResult,
    LogsPlugin,
    OptionField,
    PermissionDenied,
    Permissions,
    PluginManifest,
    PluginType,
    RegexRejected,
    UpstreamUnavailable,
    check_regex,
)

from . import DIRECTORY_PATTERN, ROOT_VARIABLE, TEMPLATE

__all__ = ["MAX_BUCKETS", "MAX_REGEX_LENGTH", "LocalLogs"]

MAX_BUCKETS = 1000
"""Most histogram buckets one call may ask for."""

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.max_mem = 8 << 20  # bytes of compiled program per pattern
_RE2_OPTIONS.log_errors = False

_RESERVED = ("timestamp", "level", "message")
_MICROSECOND = timedelta(microseconds=1)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _stringify(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _level(raw: object) -> LogLevel | None:
    if not isinstance(raw, str):
        return None
    try:
        return LogLevel(raw)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _Line:
    """One parsed line: its position, the entry and the top-level values filters see."""

    number: int
    entry: LogEntry
    values: dict[str, str]


def _parse(number: int, text: str) -> _Line | None:
    """A line as ``_Line``, or ``None`` when it is malformed."""
    try:
        record: Any = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("timestamp"), str):
        return None
    try:
        timestamp = datetime.fromisoformat(record["timestamp"])
    except ValueError:
        return None
    if timestamp.tzinfo is None or timestamp.utcoffset() is None:
        timestamp = timestamp.replace(tzinfo=UTC)
    raw_level = record.get("level")
    level = _level(raw_level)
    message = record.get("message", "")
    fields: dict[str, JSONValue] = {k: v for k, v in record.items() if k not in _RESERVED}
    if raw_level is not None and level is None:
        fields["level"] = raw_level  # keep what we could not normalise
    try:
        entry = LogEntry(
            timestamp=timestamp,
            level=level,
            message=message if isinstance(message, str) else _stringify(message),
            fields=fields,
        )
    except InvalidInput:
        return None
    values = {k: _stringify(v) for k, v in record.items() if v is not None}
    if level is not None:
        values["level"] = level.value
    return _Line(number=number, entry=entry, values=values)


class _Matcher:
    """A query's conditions, compiled once (regexes checked up front)."""

    def __init__(self, query: LogQuery) -> None:
        self.query = query
        self.text = query.text.lower()
        self.patterns: dict[int, Any] = {}
        for index, item in enumerate(query.filters):
            if item.op is FilterOp.REGEX:
                self.patterns[index] = self._compile(index, item)

    @staticmethod
    def _compile(index: int, item: LogFilter) -> Any:
        """Shape-checked by the SDK, then compiled for google-re2 (linear time)."""
        path = f"filters[{index}].value"
        check_regex(item.value, field=path)
        try:
            return re2.compile(item.value, _RE2_OPTIONS)
        except re2.error:
            raise RegexRejected.unsupported(path) from None

    def __call__(self, line: _Line) -> bool:
        query, entry = self.query, line.entry
        if not query.start <= entry.timestamp <= query.end:
            return False
        if query.levels and entry.level not in query.levels:
            return False
        if self.text and not (
            self.text in entry.message.lower()
            or any(self.text in value.lower() for value in line.values.values())
        ):
            return False
        return all(self._filter(index, item, line) for index, item in enumerate(query.filters))

    def _filter(self, index: int, item: LogFilter, line: _Line) -> bool:
        actual = line.values.get(item.field)
        match item.op:
            case FilterOp.EXISTS:
                return actual is not None
            case FilterOp.EQ:
                return actual == item.value
            case FilterOp.NE:
                return actual != item.value
            case FilterOp.CONTAINS:
                return actual is not None and item.value in actual
            case FilterOp.STARTS_WITH:
                return actual is not None and actual.startswith(item.value)
            case FilterOp.REGEX:
                return actual is not None and self.patterns[index].search(actual) is not None
        return False  # pragma: no cover - FilterOp is exhaustive


def checked_directory(configured: str) -> Path:
    """The configured directory, resolved, if it is absolute and inside the allowed root
    (``$IMBI_LOCAL_LOGS_ROOT``, when set); else ``InvalidInput`` naming the path checked."""
    path = Path(configured.strip())
    if not path.is_absolute():
        raise InvalidInput(
            f"the log directory {configured.strip()} is not an absolute path",
            fields={"directory": "must be an absolute path"},
        )
    resolved = path.resolve()
    root_text = os.environ.get(ROOT_VARIABLE, "").strip()
    if root_text:
        root = Path(root_text).resolve()
        if resolved != root and root not in resolved.parents:
            raise InvalidInput(
                f"the log directory {resolved} is outside the allowed root {root} "
                f"(${ROOT_VARIABLE})",
                fields={"directory": f"must be inside {root}"},
            )
    return resolved


class LocalLogs(LogsPlugin):
    """Logs from ``<directory>/<search template or project slug>.jsonl``."""

    manifest = PluginManifest(
        slug="local-logs",
        name="Imbi log files",
        description=(
            "Reads a project's logs from JSON-lines files in a directory on the Imbi host."
        ),
        version="1.1.0",
        api_version="1.2",
        plugin_type=PluginType.LOGS,
        options=(
            OptionField(
                name="directory",
                label="Log directory",
                default="",
                help="Directory of the .jsonl files; empty uses the service's directory setting.",
                operator_only=True,  # it selects whose files are read: never per project
                pattern=DIRECTORY_PATTERN,
                pattern_help="an absolute path without '..'",
            ),
        ),
        # isolated, the host grants the directory of the service's ``directory`` setting
        # read-only (never the per-binding option): docs/operators.md, "Host directories"
        permissions=Permissions(operator_path_settings=("directory",)),
        hints=Hints(supports_histogram=True),
        service_template=TEMPLATE,
        publisher="Imbi",
    )

    # ------------------------------------------------------------------ the file

    def _directory(self) -> Path:
        configured = self.context.options.get("directory") or self.context.service_settings.get(
            "directory"
        )
        if not isinstance(configured, str) or not configured.strip():
            raise InvalidInput(
                "no log directory is configured: set the service's directory setting "
                "or the directory option",
                fields={"directory": "not configured"},
            )
        return checked_directory(configured)

    def _refused(self, what: str) -> PermissionDenied:
        """The sandbox (or the file's owner) refused a read: say which directory may be read."""
        detail = f"{what} cannot be read: permission denied"
        if self.context.options.get("directory"):
            detail += (
                "; a plugin running isolated may read only the service's directory setting, "
                "not a directory option set on the binding"
            )
        return PermissionDenied(detail)

    def _file_name(self) -> str:
        name = self.context.search_template or self.context.project_slug or ""
        if not name:
            raise InvalidInput(
                "no log file name: set a search template or call for a project",
                fields={"search_template": "empty"},
            )
        return f"{name}.jsonl"

    def _path(self) -> tuple[Path, str]:
        """The resolved file and its display name; refuses a path outside the directory."""
        name = self._file_name()
        if "\x00" in name:
            raise InvalidInput(
                "search_template: must not contain NUL", fields={"search_template": "NUL"}
            )
        base = self._directory().resolve()
        path = (base / name).resolve()
        if not path.is_relative_to(base) or path == base:
            raise InvalidInput(
                "search_template: the log file must stay inside the log directory",
                fields={"search_template": "leaves the log directory"},
            )
        return path, name

    def _lines(self) -> tuple[list[_Line], list[str]]:
        """Every well-formed line of the file, and warnings (missing file, malformed lines)."""
        path, name = self._path()
        lines: list[_Line] = []
        malformed = 0
        try:
            with path.open(encoding="utf-8", errors="replace") as handle:
                for number, text in enumerate(handle, start=1):
                    if not text.strip():
                        continue
                    line = _parse(number, text)
                    if line is None:
                        malformed += 1
                    else:
                        lines.append(line)
        except FileNotFoundError:
            return [], [f"no log file {name} yet"]
        except PermissionError:
            raise self._refused(f"the log file {name}") from None
        except OSError as exc:
            self.context.logger.warning("cannot read %s: %s", path, exc)
            raise UpstreamUnavailable(f"the log file {name} cannot be read") from None
        warnings = [f"skipped {malformed} malformed line(s) in {name}"] if malformed else []
        return lines, warnings

    def _matching(self, query: LogQuery) -> tuple[list[_Line], list[str]]:
        matcher = _Matcher(query)  # validates regexes even when the file is missing
        lines, warnings = self._lines()
        return [line for line in lines if matcher(line)], warnings

    # ------------------------------------------------------------------ cursors

    def _fingerprint(self, query: LogQuery) -> str:
        # The window is not part of it: the platform recomputes "the last N minutes" for
        # every page, and the cursor carries its own end (``_window``).
        shape = query.to_dict()
        del shape["cursor"], shape["limit"], shape["start"], shape["end"]
        shape["file"] = self._file_name()
        digest = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()
        return digest[:24]

    def _position(self, query: LogQuery) -> tuple[int, datetime | None]:
        """The next page's offset and the first page's end (the anchor): entries newer than
        the anchor never shift the offsets, however far "the last N minutes" moved."""
        if query.cursor is None:
            return 0, None
        try:
            data = json.loads(base64.urlsafe_b64decode(query.cursor.encode("ascii")))
            offset, fingerprint = data["o"], data["q"]
            anchor = datetime.fromisoformat(data["e"])
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeEncodeError):
            raise CursorExpired("the cursor is not valid") from None
        if fingerprint != self._fingerprint(query):
            raise CursorExpired("the cursor belongs to a different query; start again")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise CursorExpired("the cursor is not valid")
        if anchor.tzinfo is None:
            raise CursorExpired("the cursor is not valid")
        return offset, anchor

    def _cursor(self, query: LogQuery, offset: int, anchor: datetime) -> str:
        data = {"o": offset, "q": self._fingerprint(query), "e": anchor.isoformat()}
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode("ascii")

    # ------------------------------------------------------------------ contract

    def test_connection(self) -> ConnectionResult:
        try:
            directory = self._directory()
        except InvalidInput as exc:
            return ConnectionResult.problem(exc.detail)
        if not directory.is_dir():
            return ConnectionResult.problem(f"the log directory {directory} does not exist")
        try:
            with os.scandir(directory) as listing:
                next(listing, None)
        except PermissionError:
            return ConnectionResult.problem(self._refused(f"the log directory {directory}").detail)
        except OSError as exc:
            return ConnectionResult.problem(f"the log directory {directory}: {exc.strerror}")
        return ConnectionResult.success(f"log directory {directory} found")

    def search(self, query: LogQuery) -> LogResult:
        offset, anchor = self._position(query)
        anchor = query.end if anchor is None else min(anchor, query.end)
        window = dataclasses.replace(query, end=anchor) if anchor < query.end else query
        matched, warnings = self._matching(window)
        matched.sort(key=lambda line: (line.entry.timestamp, line.number), reverse=True)
        page = matched[offset : offset + query.limit]
        more = offset + query.limit < len(matched)
        return LogResult(
            entries=tuple(line.entry for line in page),
            next_cursor=self._cursor(query, offset + query.limit, anchor) if more else None,
            warnings=tuple(warnings),
        )

    def histogram(self, query: LogQuery, bucket_count: int) -> Histogram:
        if isinstance(bucket_count, bool) or not isinstance(bucket_count, int):
            raise InvalidInput("bucket_count: expected an integer", fields={"bucket_count": "int"})
        if not 1 <= bucket_count <= MAX_BUCKETS:
            raise InvalidInput(
                f"bucket_count: must be between 1 and {MAX_BUCKETS}",
                fields={"bucket_count": "out of range"},
            )
        total = query.end - query.start
        count = max(1, min(bucket_count, total // _MICROSECOND))
        span = total / count
        counts = [0] * count
        matched, _ = self._matching(query)
        for line in matched:
            index = min(int((line.entry.timestamp - query.start) / span), count - 1)
            counts[index] += 1
        edges = [query.start + span * i for i in range(count)] + [query.end]
        return Histogram(
            buckets=tuple(
                HistogramBucket(start=edges[i], end=edges[i + 1], count=counts[i])
                for i in range(count)
            )
        )
