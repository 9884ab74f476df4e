"""Request/response models: validation and lossless JSON round trips."""

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from imbi_plugin_sdk import (
    ConfigKey,
    ConfigValue,
    ConfigWrite,
    ConnectionResult,
    DataType,
    FilterOp,
    Histogram,
    HistogramBucket,
    InvalidInput,
    LogEntry,
    LogFilter,
    LogLevel,
    LogQuery,
    LogResult,
    validate_config_key,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)

SAMPLES: list[Any] = [
    ConfigKey(key="db/url", data_type=DataType.STRING, last_modified=T0),
    ConfigKey(key="password", data_type=DataType.SECRET),
    ConfigValue(key="n", data_type=DataType.NUMBER, value=1.5, last_modified=T0),
    ConfigValue(key="i", data_type=DataType.NUMBER, value=3),
    ConfigValue(key="b", data_type=DataType.BOOLEAN, value=False),
    ConfigValue(key="j", data_type=DataType.JSON, value={"a": [1, 2.5, None, "x", {"b": True}]}),
    ConfigValue(key="s", data_type=DataType.SECRET, value="hunter2"),
    ConfigValue(key="unknown", data_type=DataType.STRING, value=None),
    ConfigWrite(data_type=DataType.STRING, value="v", secret=True),
    ConfigWrite(data_type=DataType.JSON, value=None),
    LogFilter(field="@service.name", op=FilterOp.STARTS_WITH, value="api"),
    LogFilter(field="trace_id", op=FilterOp.EXISTS),
    LogQuery(
        start=T0,
        end=T1,
        filters=(LogFilter(field="status", op=FilterOp.NE, value="200"),),
        levels=(LogLevel.ERROR, LogLevel.WARNING),
        text="timeout",
        limit=1000,
        cursor="abc",
    ),
    LogEntry(timestamp=T0, level=LogLevel.INFO, message="hi", fields={"n": 1, "tags": ["a"]}),
    LogEntry(timestamp=T1, message="no level"),
    LogResult(
        entries=(LogEntry(timestamp=T0, message="m", fields={"x": {"y": None}}),),
        next_cursor="next",
        warnings=("partial results",),
    ),
    LogResult(entries=()),
    Histogram(
        buckets=(
            HistogramBucket(start=T0, end=T0 + timedelta(minutes=30), count=4),
            HistogramBucket(start=T0 + timedelta(minutes=30), end=T1, count=0),
        )
    ),
    ConnectionResult.success("connected", account="123"),
    ConnectionResult.problem("access denied"),
]


@pytest.mark.parametrize("model", SAMPLES, ids=lambda m: type(m).__name__)
def test_json_round_trip_is_lossless(model: Any) -> None:
    text = json.dumps(model.to_dict())
    again = type(model).from_dict(json.loads(text))
    assert again == model
    assert json.dumps(again.to_dict()) == text


def test_non_utc_datetimes_are_normalised_to_utc() -> None:
    eastern = timezone(timedelta(hours=-5))
    key = ConfigKey(key="k", last_modified=datetime(2024, 1, 1, 7, tzinfo=eastern))
    assert key.last_modified == datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert key.last_modified is not None and key.last_modified.tzinfo is UTC
    assert ConfigKey.from_dict({"key": "k", "last_modified": "2024-01-01T12:00:00Z"}) == key


@pytest.mark.parametrize(
    "build",
    [
        lambda: ConfigKey(key="k", last_modified=datetime(2024, 1, 1)),
        lambda: LogQuery(start=datetime(2024, 1, 1), end=T1),
        lambda: LogEntry(timestamp=datetime(2024, 1, 1), message="m"),
        lambda: LogEntry.from_dict({"timestamp": "2024-01-01T00:00:00", "message": "m"}),
    ],
)
def test_naive_datetime_refused(build: Any) -> None:
    with pytest.raises(InvalidInput, match=r"naive datetime"):
        build()


@pytest.mark.parametrize(
    ("data_type", "value"),
    [
        (DataType.NUMBER, True),
        (DataType.NUMBER, "1"),
        (DataType.NUMBER, float("nan")),
        (DataType.BOOLEAN, 1),
        (DataType.STRING, 5),
        (DataType.SECRET, {"a": 1}),
        (DataType.JSON, {1: "int key"}),
        (DataType.JSON, ("tuple",)),
    ],
)
def test_data_type_mismatch_refused(data_type: DataType, value: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        ConfigValue(key="k", data_type=data_type, value=value)
    assert caught.value.fields and next(iter(caught.value.fields)).startswith("value")
    with pytest.raises(InvalidInput):
        ConfigWrite(data_type=data_type, value=value)


def test_config_write_requires_value_except_json_null() -> None:
    with pytest.raises(InvalidInput, match=r"value: is required"):
        ConfigWrite(data_type=DataType.STRING, value=None)


def test_secret_data_type_implies_secret_and_masks() -> None:
    value = ConfigValue(key="s", data_type=DataType.SECRET, value="hunter2")
    assert value.secret
    assert value.masked().value is None
    plain = ConfigValue(key="p", value="visible")
    assert plain.masked() is plain


@pytest.mark.parametrize("limit", [0, 1001, -1, True, 10.0])
def test_limit_bounds(limit: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        LogQuery(start=T0, end=T1, limit=limit)
    assert "limit" in caught.value.fields


@pytest.mark.parametrize("limit", [1, 1000])
def test_limit_edges_accepted(limit: int) -> None:
    assert LogQuery(start=T0, end=T1, limit=limit).limit == limit


def test_end_must_follow_start() -> None:
    with pytest.raises(InvalidInput, match=r"^end: must be after start"):
        LogQuery(start=T1, end=T0)
    with pytest.raises(InvalidInput):
        LogQuery(start=T0, end=T0)


def test_log_level_aliases() -> None:
    assert LogLevel("warn") is LogLevel.WARNING
    assert LogLevel("FATAL") is LogLevel.CRITICAL
    assert LogLevel("Info") is LogLevel.INFO
    query = LogQuery(start=T0, end=T1, levels=("warn", "error"))  # type: ignore[arg-type]
    assert query.levels == (LogLevel.WARNING, LogLevel.ERROR)
    with pytest.raises(InvalidInput):
        LogEntry(timestamp=T0, message="m", level="loud")  # type: ignore[arg-type]


def test_log_filter_rules() -> None:
    with pytest.raises(InvalidInput, match=r"^value: is required for eq"):
        LogFilter(field="a", op=FilterOp.EQ, value="")
    for bad in ["", "1abc", "has space", "x" * 129]:
        with pytest.raises(InvalidInput, match=r"^field: "):
            LogFilter(field=bad, value="v")
    with pytest.raises(InvalidInput, match=r"^op: "):
        LogFilter(field="a", op="like", value="v")  # type: ignore[arg-type]


def test_log_entry_fields_must_be_json() -> None:
    with pytest.raises(InvalidInput, match=r"^fields.when: "):
        LogEntry(timestamp=T0, message="m", fields={"when": T0})  # type: ignore[dict-item]


def test_histogram_buckets_must_be_ordered() -> None:
    first = HistogramBucket(start=T0, end=T1, count=1)
    with pytest.raises(InvalidInput, match=r"^buckets\[1\]"):
        Histogram(buckets=(first, first))
    with pytest.raises(InvalidInput, match=r"^count: "):
        HistogramBucket(start=T0, end=T1, count=-1)


def test_from_dict_names_missing_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        LogEntry.from_dict({"message": "m"})
    assert "timestamp" in caught.value.fields


@pytest.mark.parametrize("key", ["", " lead", "trail ", "tab\there", "x" * 256])
def test_config_key_validation(key: str) -> None:
    with pytest.raises(InvalidInput):
        validate_config_key(key)
    with pytest.raises(InvalidInput):
        ConfigKey(key=key)


def test_config_key_accepts_paths() -> None:
    assert validate_config_key("/prod/api/DATABASE_URL") == "/prod/api/DATABASE_URL"


def test_ending_now_is_last_hour() -> None:
    query = LogQuery.ending_now(limit=5)
    assert query.end - query.start == timedelta(hours=1)
    assert query.limit == 5
