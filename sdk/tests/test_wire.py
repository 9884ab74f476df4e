"""The JSON call contract: Call and Reply round trips, and ``execute`` never raising."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from imbi_plugin_sdk import (
    Call,
    ConfigKey,
    ConfigurationPlugin,
    ConfigValue,
    ConfigWrite,
    ConnectionResult,
    DataType,
    Hints,
    Histogram,
    HistogramBucket,
    LogEntry,
    LogQuery,
    LogResult,
    LogsPlugin,
    MemoryKeyValueStore,
    MemoryLogSink,
    NotFound,
    OptionField,
    OptionType,
    Permissions,
    PluginContext,
    PluginFailed,
    PluginManifest,
    PluginType,
    Reply,
    UpstreamUnavailable,
    WireError,
    execute,
)
from imbi_plugin_sdk.testkit import make_context

TOKEN = "tok-0123456789-very-secret"
T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


class Config(ConfigurationPlugin):
    manifest = PluginManifest(
        slug="wire-config",
        name="Wire",
        description="wire tests",
        version="1.0.0",
        api_version="1.0",
        plugin_type=PluginType.CONFIGURATION,
        options=(OptionField(name="password", label="Password", type=OptionType.SECRET),),
        permissions=Permissions(storage=True),
    )
    behaviour: ClassVar[str] = "ok"

    def test_connection(self) -> ConnectionResult:
        self.context.logger.info("connecting with %s", self.credentials["token"])
        return ConnectionResult.success("fine", org=self.context.organization)

    def list_keys(self) -> list[ConfigKey]:
        assert self.context.storage is not None
        return [ConfigKey(key=k) for k in self.context.storage.keys()]  # noqa: SIM118

    def get_values(self, keys: Sequence[str] | None = None) -> list[ConfigValue]:
        match self.behaviour:
            case "nan":
                value = ConfigValue(key="a", data_type=DataType.NUMBER, value=1.0)
                object.__setattr__(value, "value", float("nan"))
                return [value]
            case "object":
                return [object()]  # type: ignore[list-item]
            case "dict":
                return [{"key": "a", "value": 1}]  # type: ignore[list-item]
            case "huge":
                return [ConfigValue(key="big", value="x" * 2_000)]
            case "exit":
                raise SystemExit(3)
            case "bug":
                raise RuntimeError(f"boom with {self.credentials['token']}")
            case "unavailable":
                raise UpstreamUnavailable(f"down ({self.credentials['token']})", retry_after=7)
        return [ConfigValue(key=k, value=f"v-{k}") for k in (keys or ["a"])]

    def set_value(self, key: str, value: ConfigWrite) -> ConfigKey:
        assert self.context.storage is not None
        self.context.storage.set(key, json.dumps(value.to_dict()))
        return ConfigKey(key=key, data_type=value.data_type, secret=value.secret)

    def delete_key(self, key: str) -> None:
        raise NotFound(f"no {key}")


class Logs(LogsPlugin):
    manifest = PluginManifest(
        slug="wire-logs",
        name="Wire logs",
        description="wire tests",
        version="1.0.0",
        api_version="1.0",
        plugin_type=PluginType.LOGS,
        hints=Hints(supports_histogram=True),
    )

    def test_connection(self) -> ConnectionResult:
        return ConnectionResult.success()

    def search(self, query: LogQuery) -> LogResult:
        return LogResult(
            entries=[LogEntry(timestamp=query.start + timedelta(seconds=1), message="hi")],
            next_cursor="c1",
        )

    def histogram(self, query: LogQuery, bucket_count: int) -> Histogram:
        return Histogram(
            buckets=[HistogramBucket(start=query.start, end=query.end, count=bucket_count)]
        )


@pytest.fixture(autouse=True)
def _reset() -> None:
    Config.behaviour = "ok"


def context(**overrides: Any) -> PluginContext:
    return make_context(options={"password": "opt-secret-4242"}, **overrides)


def run(method: str, *args: Any, cls: type = Config, **kwargs: Any) -> tuple[Reply, Reply]:
    """Serialize, execute, serialize back: what the in-process runner does."""
    call = Call.build(
        cls.manifest.slug, method, *args, context=context(), credentials={"token": TOKEN}
    )
    text = call.to_json()
    assert Call.from_json(text) == call
    reply = execute(Call.from_json(text), cls, **kwargs)
    return reply, Reply.from_json(reply.to_json())


def test_context_round_trips_through_json() -> None:
    ctx = make_context(
        options={"region": "eu-west-1", "n": 3, "tags": {"a": "b"}},
        tab="logs",
        search_template="project:acme",
        service_settings={"account": "42"},
        timeout=2.5,
    )
    back = PluginContext.from_dict(json.loads(json.dumps(ctx.to_dict())))
    assert back.to_dict() == ctx.to_dict()
    assert back.storage is None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"organization": "acme", "bogus": 1}, "bogus"),
        ({"organization": "acme", "project_id": "1"}, "project_id"),
        ({"organization": "acme", "options": []}, "options"),
        ({"organization": ""}, "organization"),
        ({"organization": "acme", "timeout": -1}, "timeout"),
    ],
)
def test_context_from_dict_names_the_bad_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        PluginContext.from_dict(data)


def test_every_method_round_trips() -> None:
    query = LogQuery(start=T0, end=T0 + timedelta(hours=1), limit=5)
    store = MemoryKeyValueStore()
    _, back = run("set_value", "k", ConfigWrite(data_type="string", value="v"), storage=store)
    assert back.unwrap("set_value") == ConfigKey(key="k")
    assert json.loads(store.get("k") or "")["value"] == "v"
    _, back = run("list_keys", storage=store)
    assert back.unwrap("list_keys") == [ConfigKey(key="k")]
    _, back = run("get_values", ["x", "y"])
    assert [v.value for v in back.unwrap("get_values")] == ["v-x", "v-y"]
    _, back = run("get_values", None)
    assert [v.key for v in back.unwrap("get_values")] == ["a"]
    _, back = run("search", query, cls=Logs)
    assert back.unwrap("search").entries[0].timestamp == T0 + timedelta(seconds=1)
    _, back = run("histogram", query, 7, cls=Logs)
    assert back.unwrap("histogram").buckets[0].count == 7
    _, back = run("delete_key", "k")
    with pytest.raises(NotFound, match="no k"):
        back.unwrap("delete_key")


def test_credentials_are_on_the_wire_but_not_in_repr() -> None:
    call = Call.build("x", "list_keys", context=context(), credentials={"token": TOKEN})
    assert TOKEN in call.to_json()
    assert TOKEN not in repr(call)


def test_storage_is_withheld_unless_declared() -> None:
    reply, _ = run("list_keys", storage=MemoryKeyValueStore({"seen": "1"}))
    assert [k.key for k in reply.unwrap("list_keys")] == ["seen"]

    class NoStorage(Config):
        manifest = Config.manifest.__class__.from_dict(
            {**Config.manifest.to_dict(), "permissions": {"storage": False}}
        )

    reply, _ = run("list_keys", cls=NoStorage, storage=MemoryKeyValueStore())
    assert reply.error is not None and reply.error["code"] == "plugin_failed"


def test_log_lines_go_to_the_sink() -> None:
    sink = MemoryLogSink()
    reply, _ = run("test_connection", log=sink)
    assert reply.ok
    # contract 1.3: execute redacts every secret of the call before the line leaves it
    assert sink.records == [(logging.INFO, "connecting with ***")]


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        ("nan", "not JSON: Out of range float values"),
        ("object", "item 0: expected ConfigValue, got object"),
        ("dict", "item 0: expected ConfigValue, got dict"),
        ("exit", "failed (SystemExit)"),
        ("bug", "failed (RuntimeError)"),
    ],
)
def test_plugin_bugs_become_plugin_failed_replies(behaviour: str, reason: str) -> None:
    Config.behaviour = behaviour
    sink = MemoryLogSink()
    reply, back = run("get_values", None, log=sink)
    assert reply == back
    assert back.error is not None
    assert back.error["code"] == "plugin_failed"
    assert reason in back.error["detail"]
    with pytest.raises(PluginFailed, match="wire-config"):
        back.unwrap("get_values")
    assert TOKEN not in back.to_json()
    assert all(TOKEN not in message for message in sink.messages)


def test_a_plugin_traceback_is_logged_redacted() -> None:
    Config.behaviour = "bug"
    sink = MemoryLogSink()
    run("get_values", None, log=sink)
    (level, message), *_ = sink.records
    assert level == logging.ERROR
    assert "RuntimeError: boom with ***" in message
    assert TOKEN not in message


def test_plugin_errors_cross_with_their_fields_and_redacted_detail() -> None:
    Config.behaviour = "unavailable"
    _, back = run("get_values", None)
    with pytest.raises(UpstreamUnavailable) as caught:
        back.unwrap("get_values")
    assert caught.value.retry_after == 7
    assert caught.value.detail == "down (***)"


def test_reply_over_the_cap_is_refused_with_its_size() -> None:
    Config.behaviour = "huge"
    reply, _ = run("get_values", None, max_reply_bytes=1000)
    assert reply.error is not None
    assert reply.error["code"] == "plugin_failed"
    assert "over the 1000-byte limit" in reply.error["detail"]
    assert len(reply.to_json()) < 500


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        "not json",
        '{"wire": 2, "result": null}',
        '{"result": NaN}',
        '{"result": null, "error": {"code": "x"}}',
        '{"error": {"detail": "no code"}}',
        '{"surprise": 1}',
        "{}",
    ],
)
def test_malformed_replies_are_wire_errors(text: str) -> None:
    with pytest.raises(WireError):
        Reply.from_json(text)


def test_a_reply_that_does_not_decode_is_plugin_failed() -> None:
    reply = Reply.from_json('{"result": [{"nokey": 1}]}')
    with pytest.raises(PluginFailed):
        reply.unwrap("list_keys")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"method": "drop_tables"}, "not a plugin method"),
        ({"arguments": {}}, "get_values takes"),
        ({"credentials": {"token": 1}}, "credentials"),
        ({"entry_point": ""}, "entry_point"),
        ({"wire": 9}, "version"),
        ({"extra": 1}, "unknown field"),
    ],
)
def test_malformed_calls_are_wire_errors(change: dict[str, Any], message: str) -> None:
    call = Call.build("x", "get_values", None, context=context(), credentials={})
    with pytest.raises(WireError, match=message):
        Call.from_json(json.dumps({**call.to_dict(), **change}))


def test_build_checks_python_arguments() -> None:
    with pytest.raises(WireError, match="keys"):
        Call.build("x", "get_values", "abc", context=context(), credentials={})
    with pytest.raises(WireError, match="takes 2"):
        Call.build("x", "set_value", "k", context=context(), credentials={})


def test_a_call_with_a_bad_argument_payload_is_refused_by_execute() -> None:
    call = Call.build("x", "search", LogQuery.ending_now(), context=context(), credentials={})
    bad = Call.from_dict({**call.to_dict(), "arguments": {"query": {"start": "yesterday"}}})
    reply = execute(bad, Logs)
    assert reply.error is not None and reply.error["code"] == "plugin_failed"
    assert "invalid" in reply.error["detail"]


def test_a_huge_error_detail_is_cut_and_huge_error_fields_are_refused() -> None:
    from imbi_plugin_sdk import InvalidInput
    from imbi_plugin_sdk.wire import MAX_DETAIL_CHARS

    class Loud(Config):
        def delete_key(self, key: str) -> None:
            raise NotFound("x" * 1_000_000)

        def list_keys(self) -> list[ConfigKey]:
            raise InvalidInput("bad", fields={f"f{i}": "y" * 100 for i in range(2000)})

    reply, _ = run("delete_key", "k", cls=Loud)
    assert reply.error is not None and reply.error["code"] == "not_found"
    assert len(reply.error["detail"]) == MAX_DETAIL_CHARS
    reply, _ = run("list_keys", cls=Loud)
    assert reply.error is not None and reply.error["code"] == "plugin_failed"
    assert "raised invalid_input with" in reply.error["detail"]
    assert len(reply.to_json()) < 1000


def test_only_sdk_error_codes_cross_the_wire() -> None:
    from imbi_plugin_sdk import PluginError

    class Teapot(PluginError):
        code = "teapot"
        http_status = 200

    class Custom(Config):
        def delete_key(self, key: str) -> None:
            raise Teapot("short and stout")

        def list_keys(self) -> list[ConfigKey]:
            raise PluginError("bare base class")

    for method, args in (("delete_key", ("k",)), ("list_keys", ())):
        _, back = run(method, *args, cls=Custom)
        assert back.error is not None and back.error["code"] == "plugin_failed"
        assert "which is not an SDK error" in back.error["detail"]


class MyNotFound(NotFound):
    """A plugin's own subclass keeps its SDK code."""


def test_a_subclass_of_an_sdk_error_keeps_its_code() -> None:
    class Sub(Config):
        def delete_key(self, key: str) -> None:
            raise MyNotFound("gone")

    _, back = run("delete_key", "k", cls=Sub)
    with pytest.raises(NotFound, match="gone"):
        back.unwrap("delete_key")


@pytest.mark.parametrize(
    "error",
    [
        {"code": "teapot", "detail": "x"},
        {"code": "plugin_error", "detail": "x"},
        {"code": "invalid_input", "detail": "x", "fields": "not a mapping"},
        {"code": "invalid_input", "detail": "x", "fields": {"a": 1}},
        {"code": "upstream_unavailable", "detail": "x", "retry_after": "soon"},
        {"code": "upstream_unavailable", "detail": "x", "retry_after": 10**9},
    ],
)
def test_hostile_error_replies_become_plugin_failed(error: dict[str, Any]) -> None:
    reply = Reply.from_json(json.dumps({"error": error}))
    with pytest.raises(PluginFailed):
        reply.unwrap("list_keys")
