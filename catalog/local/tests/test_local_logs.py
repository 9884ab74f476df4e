"""LocalLogs: the SDK contract, file resolution, search semantics, cursors and histograms.

Each test runs in-process and in a sandboxed runner (``logs_handler``, conftest.py). Isolated,
the runner reads the log directory because the manifest declares
``operator_path_settings=("directory",)`` and the host grants the service's directory
setting read-only (test_local_logs_isolated.py: what is not granted is refused).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from imbi_plugin_sdk import (
    CursorExpired,
    FilterOp,
    InvalidInput,
    LogFilter,
    LogLevel,
    LogQuery,
    PermissionDenied,
    PluginError,
    PluginFailed,
)
from imbi_plugin_sdk.testkit import assert_contract

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
LEVELS = ["info", "warning", "error", "debug", "WARN"]


def line(minutes_ago: float, level: str = "info", message: str = "hello", **fields: Any) -> str:
    stamp = (NOW - timedelta(minutes=minutes_ago)).isoformat()
    return json.dumps({"timestamp": stamp, "level": level, "message": message, **fields})


def write(directory: Path, name: str, lines: list[str]) -> Path:
    path = directory / f"{name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def handler(logs_handler: Any) -> Any:
    """``handler(directory, **context)``: a LocalLogs on ``<directory>/billing.jsonl``."""
    return logs_handler


def query(**kwargs: Any) -> LogQuery:
    kwargs.setdefault("start", NOW - timedelta(hours=2))
    kwargs.setdefault("end", NOW)
    return LogQuery(**kwargs)


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    lines = [
        line(
            i,
            LEVELS[i % len(LEVELS)],
            f"request {i}",
            path=f"/v1/items/{i % 3}",
            status=500 if i % 10 == 0 else 200,
            url=f"http://svc:8080/v1/{i}",
            request_id=f"req-{i:03d}",
        )
        for i in range(100)
    ]
    write(tmp_path, "billing", lines)
    return tmp_path


def test_contract(handler: Any, logs: Path) -> None:
    assert_contract(lambda: handler(logs), sample_query=query(limit=7))


def test_contract_with_missing_file(handler: Any, tmp_path: Path) -> None:
    assert_contract(lambda: handler(tmp_path), sample_query=query())


def test_newest_first_and_limit(handler: Any, logs: Path) -> None:
    result = handler(logs).search(query(limit=5))
    assert [e.message for e in result.entries] == [f"request {i}" for i in range(5)]
    assert result.next_cursor is not None and result.warnings == ()
    first = result.entries[0]
    assert first.level is LogLevel.INFO and first.fields["path"] == "/v1/items/0"
    assert "timestamp" not in first.fields and "message" not in first.fields


def test_paging_returns_every_entry_once(handler: Any, logs: Path) -> None:
    plugin, q = handler(logs), query(limit=13)
    seen: list[str] = []
    while True:
        result = plugin.search(q)
        seen.extend(e.message for e in result.entries)
        if result.next_cursor is None:
            break
        q = dataclasses.replace(q, cursor=result.next_cursor)
    assert len(seen) == 100 and len(set(seen)) == 100


def test_cursor_from_another_query_is_refused(handler: Any, logs: Path) -> None:
    plugin = handler(logs)
    cursor = plugin.search(query(limit=5)).next_cursor
    other = query(limit=5, text="request 1", cursor=cursor)
    with pytest.raises(CursorExpired):
        plugin.search(other)
    with pytest.raises(CursorExpired):
        handler(logs, search_template="other").search(query(limit=5, cursor=cursor))
    with pytest.raises(CursorExpired):
        plugin.search(query(cursor="not-a-cursor!"))
    # changing only the page size keeps the cursor usable
    assert plugin.search(query(limit=50, cursor=cursor)).entries[0].message == "request 5"


def test_time_range_is_inclusive(handler: Any, logs: Path) -> None:
    result = handler(logs).search(
        query(start=NOW - timedelta(minutes=10), end=NOW - timedelta(minutes=5))
    )
    assert [e.message for e in result.entries] == [f"request {i}" for i in range(5, 11)]


def test_levels_are_normalised(handler: Any, logs: Path) -> None:
    result = handler(logs).search(query(levels=(LogLevel.WARNING,), limit=1000))
    assert len(result.entries) == 40  # "warning" and "WARN"
    assert {e.level for e in result.entries} == {LogLevel.WARNING}


def test_text_matches_message_and_field_values(handler: Any, logs: Path) -> None:
    plugin = handler(logs)
    assert [e.message for e in plugin.search(query(text="REQUEST 42")).entries] == ["request 42"]
    assert [e.message for e in plugin.search(query(text="req-007")).entries] == ["request 7"]


@pytest.mark.parametrize(
    ("flt", "count"),
    [
        (LogFilter(field="status", op=FilterOp.EQ, value="500"), 10),
        (LogFilter(field="status", op=FilterOp.NE, value="200"), 10),
        (LogFilter(field="path", op=FilterOp.CONTAINS, value="items/1"), 33),
        (LogFilter(field="path", op=FilterOp.STARTS_WITH, value="/v1/"), 100),
        (LogFilter(field="request_id", op=FilterOp.REGEX, value=r"^req-0[0-4]\d$"), 50),
        (LogFilter(field="status", op=FilterOp.EXISTS), 100),
        (LogFilter(field="missing", op=FilterOp.EXISTS), 0),
        (LogFilter(field="missing", op=FilterOp.NE, value="x"), 100),
        (LogFilter(field="level", op=FilterOp.EQ, value="warning"), 40),
        (LogFilter(field="message", op=FilterOp.EQ, value="request 3"), 1),
        # values containing colons are compared whole
        (LogFilter(field="url", op=FilterOp.EQ, value="http://svc:8080/v1/3"), 1),
        (LogFilter(field="url", op=FilterOp.STARTS_WITH, value="http://svc:8080"), 100),
        (LogFilter(field="url", op=FilterOp.CONTAINS, value=":8080/v1/9"), 11),
    ],
)
def test_filters(handler: Any, logs: Path, flt: LogFilter, count: int) -> None:
    result = handler(logs).search(query(filters=(flt,), limit=1000))
    assert len(result.entries) == count


def test_filters_combine_and_stringify_non_strings(handler: Any, tmp_path: Path) -> None:
    write(
        tmp_path,
        "billing",
        [
            line(1, ok=True, tags=["a", "b"], n=None),
            line(2, ok=False, tags=["a"]),
        ],
    )
    plugin = handler(tmp_path)
    ok = LogFilter(field="ok", op=FilterOp.EQ, value="true")
    tags = LogFilter(field="tags", op=FilterOp.CONTAINS, value='"b"')
    assert len(plugin.search(query(filters=(ok, tags))).entries) == 1
    null = LogFilter(field="n", op=FilterOp.EXISTS)
    assert plugin.search(query(filters=(null,))).entries == ()


def test_malformed_lines_are_skipped_with_a_warning(handler: Any, tmp_path: Path) -> None:
    write(
        tmp_path,
        "billing",
        [
            line(1, message="good one"),
            "this is not json",
            json.dumps(["not", "an", "object"]),
            json.dumps({"message": "no timestamp"}),
            json.dumps({"timestamp": "yesterday", "message": "bad timestamp"}),
            '{"timestamp": "2025-06-01T11:58:00+00:00", "message": "nan", "x": NaN}',
            "",
            line(3, level="verbose", message="odd level"),
            json.dumps({"timestamp": "2025-06-01T11:56:00", "message": "naive is UTC"}),
        ],
    )
    result = handler(tmp_path).search(query())
    assert [e.message for e in result.entries] == ["good one", "odd level", "naive is UTC"]
    assert result.entries[1].level is None and result.entries[1].fields["level"] == "verbose"
    assert result.warnings == ("skipped 5 malformed line(s) in billing.jsonl",)


def test_missing_file_is_empty_with_a_warning(handler: Any, tmp_path: Path) -> None:
    result = handler(tmp_path).search(query())
    assert result.entries == () and result.next_cursor is None
    assert result.warnings == ("no log file billing.jsonl yet",)


def test_missing_directory(handler: Any, runner_mode: str, tmp_path: Path) -> None:
    """In-process a missing directory reads as a missing file; isolated, the host refuses to
    grant a directory that does not exist (no runner starts): 503 plugin_misconfigured naming the
    setting, not the path."""
    plugin = handler(tmp_path / "nowhere")
    if runner_mode == "in_process":
        assert plugin.search(query()).warnings == ("no log file billing.jsonl yet",)
        return
    with pytest.raises(PluginError, match="directory: not an existing directory") as info:
        plugin.search(query())
    assert (info.value.code, info.value.http_status) == ("plugin_misconfigured", 503)
    assert str(tmp_path) not in info.value.detail  # no host path to a tab's viewer


def test_search_template_names_the_file(handler: Any, logs: Path) -> None:
    write(logs, "demo/shop", [line(1, message="from shop")])
    result = handler(logs, search_template="demo/shop").search(query())
    assert [e.message for e in result.entries] == ["from shop"]


def test_directory_option_overrides_the_service_setting(
    handler: Any, runner_mode: str, logs: Path
) -> None:
    """In-process the binding's option wins; isolated, only the service setting's directory
    is granted, so an option pointing elsewhere is refused by the kernel (PermissionDenied
    naming the option), in search and in test_connection."""
    granted = logs / "granted"
    granted.mkdir()
    plugin = handler(granted, options={"directory": str(logs)})
    if runner_mode == "in_process":
        assert len(plugin.search(query()).entries) == 100
        assert plugin.test_connection().ok is True
        return
    with pytest.raises(PermissionDenied, match="not a directory option set on the binding"):
        plugin.search(query())
    result = plugin.test_connection()
    assert result.ok is False and "not a directory option" in result.message


def test_histogram_counts_matching_entries(handler: Any, runner_mode: str, logs: Path) -> None:
    plugin = handler(logs)
    histogram = plugin.histogram(query(), 12)
    assert len(histogram.buckets) == 12
    assert sum(b.count for b in histogram.buckets) == 100
    assert histogram.buckets[0].start == NOW - timedelta(hours=2)
    assert histogram.buckets[-1].end == NOW
    assert histogram.buckets[-1].count == 11  # minutes 0..10, both ends included
    errors = plugin.histogram(query(levels=(LogLevel.ERROR,)), 4)
    assert sum(b.count for b in errors.buckets) == 20
    # in-process the plugin refuses; isolated, the host's wire encoding refuses first (502)
    with pytest.raises(InvalidInput if runner_mode == "in_process" else PluginFailed):
        plugin.histogram(query(), 0)
