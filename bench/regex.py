"""Regex log filters: a catastrophic pattern answers in well under 1 s (target: < 1 s).

Runs the real ``local-logs`` handler over a JSON-lines file of ``LINES`` lines spanning two
weeks (the "long range"), side by side:

1. ``(.*.*){3}X``: refused up front as ``regex_rejected`` (HTTP 400 through the API);
2. ``.*.*.*.*X``: accepted, matched by google-re2 in linear time over every line;
3. google-re2 alone on the catastrophic pattern over every line (linear even unchecked), and
   Python's backtracking ``re`` on ONE short line, for scale.

``python -m bench.regex`` prints a Markdown table; ``python -m bench`` includes it.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

LINES = 20_000
WIDTH = 200
NOW = datetime(2026, 11, 1, tzinfo=UTC)
TARGET_S = 1.0


def _file(directory: Path) -> None:
    with (directory / "billing.jsonl").open("w") as out:
        for i in range(LINES):
            stamp = (NOW - timedelta(minutes=i)).isoformat()
            out.write(json.dumps({"timestamp": stamp, "message": "a" * WIDTH}) + "\n")


def _search(directory: Path, pattern: str) -> tuple[float, str]:
    from imbi_plugin_local.logs import LocalLogs
    from imbi_plugin_sdk import Credentials, FilterOp, LogFilter, LogQuery, PluginError
    from imbi_plugin_sdk.testkit import make_context

    handler = LocalLogs(
        make_context(project_slug="billing", service_settings={"directory": str(directory)}),
        Credentials(),
    )
    query = LogQuery(
        start=NOW - timedelta(days=14),
        end=NOW,
        limit=1000,
        filters=(LogFilter(field="message", op=FilterOp.REGEX, value=pattern),),
    )
    started = time.perf_counter()
    try:
        result = handler.search(query)
        outcome = f"{len(result.entries)} entries"
    except PluginError as exc:
        outcome = f"{exc.http_status} {exc.code}"
    return time.perf_counter() - started, outcome


def _python_re(pattern: str, width: int) -> float:
    started = time.perf_counter()
    re.compile(pattern).search("a" * width)
    return time.perf_counter() - started


def _re2_all_lines(pattern: str) -> float:
    import re2

    compiled = re2.compile(pattern)
    line = "a" * WIDTH
    started = time.perf_counter()
    for _ in range(LINES):
        compiled.search(line)
    return time.perf_counter() - started


def run() -> tuple[list[str], bool]:
    rows: list[str] = []
    ok = True
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        _file(directory)
        for label, pattern in (
            ("catastrophic `(.*.*){3}X`", r"(.*.*){3}X"),
            ("accepted `.*.*.*.*X` (google-re2)", r".*.*.*.*X"),
            ("simple `a{10}$` (google-re2)", r"a{10}$"),
        ):
            seconds, outcome = _search(directory, pattern)
            target = "for scale (mostly JSON parsing)"
            if "catastrophic" in label:
                ok &= seconds < TARGET_S and outcome == "400 regex_rejected"
                target = f"400 in < {TARGET_S:.0f} s"
            rows.append(
                f"| local-logs search, {LINES} lines x {WIDTH} chars, 14 days: {label} | "
                f"{seconds * 1000:.1f} ms | {outcome} | {target} |"
            )
    seconds = _re2_all_lines(r"(.*.*){3}X")
    rows.append(
        f"| google-re2 alone (no shape check), `(.*.*){{3}}X` on all {LINES} lines | "
        f"{seconds * 1000:.1f} ms | linear | for scale |"
    )
    for width in (40, 80):
        seconds = _python_re(r"(.*.*){2}X", width)
        rows.append(
            f"| Python `re`, `(.*.*){{2}}X` on ONE line of {width} chars (not used) | "
            f"{seconds * 1000:.1f} ms | backtracking | for scale |"
        )
    return rows, ok


def main() -> int:
    rows, ok = run()
    print("| benchmark | time | outcome | target |\n|---|---|---|---|")
    print("\n".join(rows))
    print(f"\npython {sys.version.split()[0]}; {'all targets met' if ok else 'TARGET MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
