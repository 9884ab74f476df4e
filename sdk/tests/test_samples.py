"""Sample builders, fakes and ``call_as_host``: what an author tests with, without a host."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest
from imbi_plugin_sdk import (
    ConfigKey,
    ConfigurationPlugin,
    ConfigValue,
    ConfigWrite,
    ConnectionResult,
    Credentials,
    DataType,
    LogEntry,
    LogLevel,
    LogQuery,
    LogResult,
    LogsPlugin,
    MemoryLogSink,
    NotSupported,
    PluginFailed,
    PluginHandler,
    PluginManifest,
    PluginType,
    wire,
)
from imbi_plugin_sdk.testkit import (
    call_as_host,
    make_context,
    run_contract,
    sample_call,
    sample_keys,
    sample_query,
    sample_write,
)


def _manifest(plugin_type: PluginType) -> PluginManifest:
    return PluginManifest(
        slug=f"samples-{plugin_type}",
        name="Samples",
        description="test double",
        version="1.0.0",
        api_version="1.0",
        plugin_type=plugin_type,
    )


class MemoryConfig(ConfigurationPlugin):
    manifest = _manifest(PluginType.CONFIGURATION)
    data: ClassVar[dict[str, str]] = {"db/url": "postgres://db"}

    def test_connection(self) -> ConnectionResult:
        return ConnectionResult.success()

    def list_keys(self) -> list[ConfigKey]:
        return [ConfigKey(key=key) for key in self.data]

    def get_values(self, keys: Sequence[str] | None = None) -> list[ConfigValue]:
        wanted = self.data if keys is None else [k for k in keys if k in self.data]
        return [ConfigValue(key=key, value=self.data[key]) for key in wanted]

    def set_value(self, key: str, value: ConfigWrite) -> ConfigKey:
        raise NotSupported("read only")

    def delete_key(self, key: str) -> None:
        raise NotSupported("read only")


class MemoryLogs(LogsPlugin):
    manifest = _manifest(PluginType.LOGS)

    def test_connection(self) -> ConnectionResult:
        return ConnectionResult.success()

    def search(self, query: LogQuery) -> LogResult:
        return LogResult(entries=(LogEntry(timestamp=query.end, message="hello"),))


def factory(cls: type[PluginHandler]) -> Callable[[], PluginHandler]:
    return lambda: cls(make_context(), Credentials(token="t"))


@pytest.mark.parametrize("data_type", list(DataType))
def test_sample_write_fits_each_data_type(data_type: DataType) -> None:
    key, write = sample_write(data_type)
    assert write.data_type is data_type
    assert key == f"contract-test-{data_type.value}"
    assert write.value is not None


def test_sample_query_ends_now_and_builds_filters() -> None:
    before = datetime.now(UTC)
    query = sample_query(timedelta(minutes=5), filters={"service": "api"}, levels=("error",))
    assert before <= query.end <= datetime.now(UTC)
    assert query.end - query.start == timedelta(minutes=5)
    assert [(f.field, f.value) for f in query.filters] == [("service", "api")]
    assert query.levels == (LogLevel.ERROR,)


@pytest.mark.parametrize("method", sorted(wire.METHODS))
def test_sample_call_exists_for_every_method_and_is_json(method: str) -> None:
    call = sample_call(method)
    assert wire.Call.from_json(call.to_json()) == call
    assert set(call.arguments) == set(wire.METHODS[method])


def test_sample_keys_are_unique() -> None:
    assert sample_keys() != sample_keys()


def test_make_context_with_a_log_sink_keeps_the_lines() -> None:
    sink = MemoryLogSink()
    context = make_context(log=sink, options={"region": "x"})
    context.logger.warning("careful %s", "now")
    assert sink.records == [(logging.WARNING, "careful now")]
    assert context.options["region"] == "x"
    assert context.storage is not None


def test_call_as_host_returns_models_through_json() -> None:
    values = call_as_host(MemoryConfig, "get_values", ["db/url"])
    assert values == [ConfigValue(key="db/url", value="postgres://db")]
    result = call_as_host(MemoryLogs, "search", sample_query())
    assert json.loads(json.dumps(result.to_dict())) == result.to_dict()


def test_the_kit_refuses_what_the_host_would_refuse() -> None:
    class Smuggler(MemoryConfig):
        def get_values(self, keys=None):  # type: ignore[no-untyped-def]
            values = super().get_values(keys)
            object.__setattr__(values[0], "value", float("inf"))
            return values

    report = run_contract(factory(Smuggler))
    assert any("cannot cross the wire" in failure for failure in report.failures), report.failures
    with pytest.raises(PluginFailed, match="not JSON"):
        call_as_host(Smuggler, "get_values", None)
