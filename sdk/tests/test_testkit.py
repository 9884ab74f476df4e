"""The contract test kit passes correct handlers and reports broken ones."""

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from imbi_plugin_sdk import (
    ConfigKey,
    ConfigurationPlugin,
    ConfigValue,
    ConfigWrite,
    ConnectionResult,
    Credentials,
    CursorExpired,
    DataType,
    Hints,
    Histogram,
    HistogramBucket,
    LogEntry,
    LogLevel,
    LogQuery,
    LogResult,
    LogsPlugin,
    NotFound,
    PluginContext,
    PluginManifest,
    PluginType,
)
from imbi_plugin_sdk.testkit import assert_contract, make_context, run_contract

WRITE = ("contract/key", ConfigWrite(data_type=DataType.JSON, value={"a": [1, 2]}))


def _manifest(plugin_type: PluginType, hints: Hints | None = None) -> PluginManifest:
    return PluginManifest(
        slug=f"memory-{plugin_type}",
        name="In memory",
        description="test double",
        version="1.0.0",
        api_version="1.0",
        plugin_type=plugin_type,
        hints=hints or Hints(),
    )


class MemoryConfig(ConfigurationPlugin):
    """A correct configuration plugin over a dict."""

    manifest = _manifest(PluginType.CONFIGURATION)

    def __init__(self, context: PluginContext, credentials: Credentials) -> None:
        super().__init__(context, credentials)
        self.data: dict[str, tuple[DataType, object]] = {
            "db/url": (DataType.STRING, "postgres://db"),
            "workers": (DataType.NUMBER, 4),
            "api/token": (DataType.SECRET, "hunter2"),
        }

    def test_connection(self) -> ConnectionResult:
        return ConnectionResult.success("ok", keys=str(len(self.data)))

    def list_keys(self) -> list[ConfigKey]:
        return [ConfigKey(key=key, data_type=kind) for key, (kind, _) in self.data.items()]

    def get_values(self, keys: Sequence[str] | None = None) -> list[ConfigValue]:
        wanted = self.data.keys() if keys is None else [k for k in keys if k in self.data]
        return [
            ConfigValue(key=key, data_type=self.data[key][0], value=self.data[key][1])  # type: ignore[arg-type]
            for key in wanted
        ]

    def set_value(self, key: str, value: ConfigWrite) -> ConfigKey:
        self.data[key] = (value.data_type, value.value)
        return ConfigKey(key=key, data_type=value.data_type, secret=value.secret)

    def delete_key(self, key: str) -> None:
        self.data.pop(key, None)


class IgnoresRequestedKeys(MemoryConfig):
    def get_values(self, keys: Sequence[str] | None = None) -> list[ConfigValue]:
        return super().get_values(None)


class DeleteNotIdempotent(MemoryConfig):
    def delete_key(self, key: str) -> None:
        if key not in self.data:
            raise NotFound(f"{key} does not exist")
        del self.data[key]


class ForgetsWrites(MemoryConfig):
    def set_value(self, key: str, value: ConfigWrite) -> ConfigKey:
        return ConfigKey(key=key, data_type=value.data_type)


class MemoryLogs(LogsPlugin):
    """A correct logs plugin: one entry a minute, paginated by an offset cursor."""

    manifest = _manifest(PluginType.LOGS, Hints(supports_histogram=True))

    def test_connection(self) -> ConnectionResult:
        return ConnectionResult.success()

    def _all(self, query: LogQuery) -> list[LogEntry]:
        minutes = int((query.end - query.start).total_seconds() // 60)
        return [
            LogEntry(
                timestamp=query.start + timedelta(minutes=i),
                message=f"line {i}",
                level=LogLevel.INFO,
                fields={"i": i},
            )
            for i in range(minutes + 1)
        ]

    def search(self, query: LogQuery) -> LogResult:
        offset = int(query.cursor or 0)
        entries = self._all(query)
        page = entries[offset : offset + query.limit]
        more = offset + query.limit < len(entries)
        return LogResult(
            entries=tuple(page), next_cursor=str(offset + query.limit) if more else None
        )

    def histogram(self, query: LogQuery, bucket_count: int) -> Histogram:
        width = (query.end - query.start) / bucket_count
        return Histogram(
            buckets=tuple(
                HistogramBucket(
                    start=query.start + width * i, end=query.start + width * (i + 1), count=1
                )
                for i in range(bucket_count)
            )
        )


class OutOfRangeAndOverLimit(MemoryLogs):
    def search(self, query: LogQuery) -> LogResult:
        wide = dataclasses.replace(query, start=query.start - timedelta(days=1), limit=1000)
        return LogResult(entries=tuple(self._all(wide)[: query.limit + 5]), next_cursor="x")


class CursorBreaks(MemoryLogs):
    def search(self, query: LogQuery) -> LogResult:
        if query.cursor:
            raise CursorExpired("gone")
        return LogResult(entries=(), next_cursor="abc")


QUERY = LogQuery(
    start=datetime(2024, 1, 1, tzinfo=UTC), end=datetime(2024, 1, 1, 1, tzinfo=UTC), limit=25
)


def factory(cls: type[ConfigurationPlugin] | type[LogsPlugin]):  # type: ignore[no-untyped-def]
    return lambda: cls(make_context(), Credentials(token="t"))


def test_correct_configuration_handler_passes() -> None:
    report = assert_contract(factory(MemoryConfig), sample_write=WRITE)
    assert report.passed
    assert report.failures == []
    assert any("idempotent" in check for check in report.checks)


def test_correct_logs_handler_passes_with_pagination_and_histogram() -> None:
    report = assert_contract(factory(MemoryLogs), sample_query=QUERY)
    assert "search with next_cursor returns a LogResult" in report.checks
    assert any("histogram" in check for check in report.checks)
    assert_contract(factory(MemoryLogs))  # default query: the last hour


def test_reports_unrequested_keys() -> None:
    report = run_contract(factory(IgnoresRequestedKeys), sample_write=WRITE)
    assert not report.passed
    assert any(f.startswith("get_values omits missing keys") for f in report.failures)
    assert any("returned keys not requested" in f for f in report.failures)


def test_reports_non_idempotent_delete() -> None:
    report = run_contract(factory(DeleteNotIdempotent), sample_write=WRITE)
    assert report.failures == [
        "delete_key is idempotent and the key disappears: raised NotFound: contract/key does not "
        "exist"
    ]
    with pytest.raises(AssertionError, match=r"failed 1 of .* contract checks"):
        report.assert_ok()


def test_reports_lost_write() -> None:
    report = run_contract(factory(ForgetsWrites), sample_write=WRITE)
    assert any("returned 0 values, not 1" in f for f in report.failures)


def test_reports_out_of_range_entries_and_limit() -> None:
    report = run_contract(factory(OutOfRangeAndOverLimit), sample_query=QUERY)
    text = "\n".join(report.failures)
    assert "limit is 25" in text
    with pytest.raises(AssertionError, match=r"contract checks"):
        assert_contract(factory(OutOfRangeAndOverLimit), sample_query=QUERY)


def test_reports_broken_cursor() -> None:
    report = run_contract(factory(CursorBreaks), sample_query=QUERY)
    assert report.failures[0] == (
        "search with next_cursor returns a LogResult: raised CursorExpired: gone"
    )


class CursorTiedToStart(MemoryLogs):
    """The cursor contract broken: the cursor remembers the query's ``start``."""

    def search(self, query: LogQuery) -> LogResult:
        offset = 0
        if query.cursor:
            stamp, _, number = query.cursor.partition("|")
            if stamp != query.start.isoformat():
                raise CursorExpired("the query changed")
            offset = int(number)
        entries = self._all(query)
        more = offset + query.limit < len(entries)
        cursor = f"{query.start.isoformat()}|{offset + query.limit}" if more else None
        return LogResult(entries=tuple(entries[offset : offset + query.limit]), next_cursor=cursor)


class CursorRepeats(MemoryLogs):
    def search(self, query: LogQuery) -> LogResult:
        return LogResult(entries=tuple(self._all(query)[: query.limit]), next_cursor="again")


def test_pages_through_a_moving_window_and_catches_a_cursor_tied_to_start() -> None:
    ok = assert_contract(factory(MemoryLogs), sample_query=QUERY)
    moving = "cursors page on while the time window moves (a cursor is not tied to start)"
    assert moving in ok.checks
    report = run_contract(factory(CursorTiedToStart), sample_query=QUERY)
    # the identical query re-sent passes; the moved window (as the platform sends it) does not
    assert report.failures == [f"{moving}: raised CursorExpired: the query changed"]
    repeats = run_contract(factory(CursorRepeats), sample_query=QUERY)
    assert any("returned a cursor already used" in f for f in repeats.failures)


def test_reports_bad_class_and_stops() -> None:
    class Claims(MemoryLogs):
        manifest = _manifest(PluginType.LOGS, Hints(supports_histogram=True))
        histogram = LogsPlugin.histogram

    report = run_contract(factory(Claims))
    assert len(report.failures) == 1
    assert "supports_histogram is set but histogram() is not overridden" in report.failures[0]
    assert len(report.checks) == 1


def test_reports_wrong_return_type_and_factory_errors() -> None:
    class BadConnection(MemoryConfig):
        def test_connection(self) -> ConnectionResult:
            return True  # type: ignore[return-value]

    report = run_contract(factory(BadConnection))
    assert report.failures == ["test_connection returns a ConnectionResult: got bool"]

    def explode() -> MemoryConfig:
        raise RuntimeError("no backend")

    report = run_contract(explode)
    assert report.failures == ["construct: handler_factory raised RuntimeError: no backend"]
