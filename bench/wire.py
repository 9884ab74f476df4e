"""What the SDK's JSON call contract costs per call, against calling the handler directly.

Both sides build a handler and validate its result; the contract side also encodes the Call
as JSON, decodes it, runs ``wire.execute`` (which encodes the Reply), decodes the Reply and
rebuilds the result models: exactly what ``plugins_core.serving.runner.InProcessRunner`` does, minus
Django. Measured interleaved, side by side, for a small and a large configuration payload
and a page of log entries. Run alone with ``python -m bench.wire`` (no database needed).
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from imbi_plugin_sdk import (
    ConfigKey,
    ConfigurationPlugin,
    ConfigValue,
    ConfigWrite,
    ConnectionResult,
    Credentials,
    LogEntry,
    LogLevel,
    LogQuery,
    LogResult,
    LogsPlugin,
    PluginManifest,
    PluginType,
    check_result,
)
from imbi_plugin_sdk.testkit import make_context
from imbi_plugin_sdk.wire import Call, Reply, execute

from bench.timing import interleaved, print_table

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "400"))
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _manifest(plugin_type: PluginType) -> PluginManifest:
    return PluginManifest(
        slug=f"bench-{plugin_type}",
        name="Bench",
        description="no-op",
        version="1.0.0",
        api_version="1.0",
        plugin_type=plugin_type,
    )


class StaticConfig(ConfigurationPlugin):
    manifest = _manifest(PluginType.CONFIGURATION)
    values: ClassVar[list[ConfigValue]] = []

    def test_connection(self) -> ConnectionResult:
        return ConnectionResult.success()

    def list_keys(self) -> list[ConfigKey]:
        return [ConfigKey(key=v.key) for v in self.values]

    def get_values(self, keys: Sequence[str] | None = None) -> list[ConfigValue]:
        return list(self.values)

    def set_value(self, key: str, value: ConfigWrite) -> ConfigKey:
        return ConfigKey(key=key)

    def delete_key(self, key: str) -> None:
        return None


class StaticLogs(LogsPlugin):
    manifest = _manifest(PluginType.LOGS)
    page = LogResult(
        entries=tuple(
            LogEntry(
                timestamp=T0 + timedelta(seconds=i),
                message=f"GET /api/items/{i} 200 in {i % 50} ms",
                level=LogLevel.INFO,
                fields={"status": 200, "path": f"/api/items/{i}", "request_id": f"r-{i:08d}"},
            )
            for i in range(100)
        ),
        next_cursor="abc",
    )

    def test_connection(self) -> ConnectionResult:
        return ConnectionResult.success()

    def search(self, query: LogQuery) -> LogResult:
        return self.page


def _values(count: int) -> list[ConfigValue]:
    return [
        ConfigValue(key=f"KEY_{i}", value=f"value-{i}-" + "x" * 40, last_modified=T0)
        for i in range(count)
    ]


def _pair(cls: type[Any], method: str, *args: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
    context = make_context(options={"region": "eu-west-1"})
    credentials = Credentials(api_token="bench-token-0123456789")

    def direct() -> Any:
        return check_result(
            cls.manifest.slug, method, getattr(cls(context, credentials), method)(*args)
        )

    def contract() -> Any:
        call = Call.build("bench", method, *args, context=context, credentials=credentials)
        reply = execute(Call.from_json(call.to_json()), cls, storage=context.storage)
        return Reply.from_json(reply.to_json()).unwrap(method)

    assert direct() == contract()  # same result either way
    return direct, contract


def rows(rounds: int = ROUNDS) -> list[str]:
    """Markdown table rows: subject (contract) vs baseline (direct call)."""
    query = LogQuery(start=T0, end=T0 + timedelta(hours=1))
    cases: list[tuple[str, type[Any], str, tuple[Any, ...], int]] = [
        ("get_values, 20 values", StaticConfig, "get_values", (None,), 20),
        ("get_values, 1000 values", StaticConfig, "get_values", (None,), 1000),
        ("search, 100 log entries", StaticLogs, "search", (query,), 0),
        ("test_connection", StaticConfig, "test_connection", (), 0),
    ]
    out = []
    for label, cls, method, args, count in cases:
        if count:
            StaticConfig.values = _values(count)
        direct, contract = _pair(cls, method, *args)
        ta, tb = interleaved(contract, direct, max(rounds // (10 if count >= 1000 else 1), 20))
        p50a, p50b = statistics.median(ta) * 1e6, statistics.median(tb) * 1e6
        out.append(
            f"| JSON Call/Reply round trip vs direct call: {label} (p50) | {p50a:.0f} µs | "
            f"{p50b:.0f} µs | {p50a / p50b:.1f}x (+{p50a - p50b:.0f} µs) | |"
        )
    return out


def main() -> int:
    return print_table(rows(), ROUNDS)


if __name__ == "__main__":
    raise SystemExit(main())
