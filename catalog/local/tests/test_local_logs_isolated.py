"""LocalLogs in both modes: the input checks, and what the sandbox grants and refuses.

Each test runs in-process and in a sandboxed runner (``logs_handler``, conftest.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from imbi_plugin_sdk import (
    FilterOp,
    InvalidInput,
    LogFilter,
    LogQuery,
    PermissionDenied,
    PluginError,
)

NOW = datetime.now(UTC).replace(microsecond=0)


def line(minutes_ago: float, message: str = "hello") -> str:
    stamp = (NOW - timedelta(minutes=minutes_ago)).isoformat()
    return json.dumps({"timestamp": stamp, "level": "info", "message": message})


def write(directory: Path, name: str, lines: list[str]) -> Path:
    path = directory / f"{name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def query(**kwargs: Any) -> LogQuery:
    kwargs.setdefault("start", NOW - timedelta(hours=2))
    kwargs.setdefault("end", NOW)
    return LogQuery(**kwargs)


@pytest.fixture
def handler(logs_handler: Any) -> Any:
    return logs_handler


def test_each_mode_runs_where_it_says(handler: Any, runner_mode: str, tmp_path: Path) -> None:
    plugin = handler(tmp_path)
    isolated = type(plugin).__name__ == "IsolatedLocalLogs"
    assert isolated is (runner_mode == "isolated")


def test_bad_regex_is_invalid_input(handler: Any, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        handler(tmp_path).search(
            query(filters=(LogFilter(field="path", op=FilterOp.REGEX, value="(unclosed"),))
        )
    assert "filters[0].value" in info.value.fields


@pytest.mark.parametrize(
    "template", ["../outside", "/etc/passwd", "a/../../outside", "../../../etc/x", "sub/../../x"]
)
def test_path_traversal_is_refused(handler: Any, tmp_path: Path, template: str) -> None:
    directory = tmp_path / "logs"
    directory.mkdir()
    write(tmp_path, "outside", [line(1)])
    with pytest.raises(InvalidInput):
        handler(directory, search_template=template).search(query())


def test_symlink_out_of_the_directory_is_refused(handler: Any, tmp_path: Path) -> None:
    directory = tmp_path / "logs"
    directory.mkdir()
    secret = write(tmp_path, "secret", [line(1)])
    (directory / "billing.jsonl").symlink_to(secret)
    with pytest.raises(InvalidInput):
        handler(directory).search(query())


def test_no_directory_configured(handler: Any, runner_mode: str, tmp_path: Path) -> None:
    plugin = handler("")
    assert plugin.test_connection().ok is False
    with pytest.raises(InvalidInput):
        plugin.search(query())
    assert handler(tmp_path).test_connection().ok is True
    missing = handler(tmp_path / "missing")
    if runner_mode == "in_process":
        assert missing.test_connection().ok is False
        return
    # isolated, the host refuses to grant a directory that does not exist: no runner starts
    with pytest.raises(PluginError, match="directory: not an existing directory") as info:
        missing.test_connection()
    assert info.value.code == "plugin_misconfigured"  # the operator's setting, not input


def test_the_sandbox_lets_an_isolated_local_logs_read_only_the_granted_directory(
    handler: Any, runner_mode: str, tmp_path: Path
) -> None:
    """Isolated, Landlock grants the runner the service setting's directory (``granted``)
    and nothing else of the host: the binding's ``directory`` option naming another
    directory is refused by the kernel (PermissionDenied), though the plugin's own checks
    pass (absolute, no ``..``). In-process nothing but the plugin's checks applies."""
    granted, other = tmp_path / "granted", tmp_path / "other"
    write(granted, "billing", [line(1, "granted")])
    write(other, "billing", [line(1, "not granted")])
    assert [e.message for e in handler(granted).search(query()).entries] == ["granted"]
    plugin = handler(granted, options={"directory": str(other)})
    if runner_mode == "in_process":
        assert [e.message for e in plugin.search(query()).entries] == ["not granted"]
        return
    with pytest.raises(PermissionDenied, match=r"the log file billing\.jsonl cannot be read"):
        plugin.search(query())
