"""CloudWatch filter patterns built from typed queries (pure functions, no AWS)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from imbi_plugin_aws.cloudwatch import (
    build_plan,
    decode_cursor,
    encode_cursor,
    parse_event,
    quote,
)
from imbi_plugin_sdk import CursorExpired, InvalidInput, LogFilter, LogLevel, LogQuery

END = datetime(2026, 1, 1, 12, tzinfo=UTC)


def query(**kwargs: object) -> LogQuery:
    return LogQuery(start=END - timedelta(hours=1), end=END, **kwargs)  # type: ignore[arg-type]


def flt(field: str, op: str, value: str = "") -> LogFilter:
    return LogFilter(field=field, op=op, value=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", "billing", '{ $.service = "billing" }'),
        ("ne", "billing", '{ $.service != "billing" }'),
        ("contains", "bill", '{ $.service = "*bill*" }'),
        ("starts_with", "bill", '{ $.service = "bill*" }'),
        ("exists", "", "{ $.service = * }"),
    ],
)
def test_single_condition(op: str, value: str, expected: str) -> None:
    plan = build_plan(query(filters=(flt("service", op, value),)))
    assert plan.pattern == expected
    assert plan.local_filters == ()
    assert plan.warnings == ()


def test_conditions_are_joined_with_and_in_one_block() -> None:
    plan = build_plan(
        query(filters=(flt("service", "eq", "billing"), flt("http.method", "ne", "GET")))
    )
    assert plan.pattern == '{ $.service = "billing" && $.http.method != "GET" }'


def test_numbers_and_booleans_also_match_json_scalars() -> None:
    plan = build_plan(query(filters=(flt("status", "eq", "500"), flt("ok", "eq", "false"))))
    assert plan.pattern == (
        '{ ($.status = "500" || $.status = 500) && ($.ok = "false" || $.ok IS FALSE) }'
    )


def test_values_with_quotes_colons_and_backslashes_are_escaped() -> None:
    value = 'say "hi": C:\\temp'
    plan = build_plan(query(filters=(flt("msg", "eq", value),)))
    assert plan.pattern == '{ $.msg = "say \\"hi\\": C:\\\\temp" }'
    assert quote('a"b') == '"a\\"b"'
    assert quote("k:v") == '"k:v"'


def test_levels_are_alternatives_in_parentheses() -> None:
    plan = build_plan(query(levels=(LogLevel.ERROR, LogLevel.WARNING)))
    assert plan.pattern.startswith("{ (") and plan.pattern.endswith(") }")
    inner = plan.pattern[3:-3]
    alternatives = inner.split(" || ")
    assert alternatives[:3] == ['$.level = "error"', '$.level = "ERROR"', '$.level = "Error"']
    for name in ("warning", "WARNING", "warn", "WARN"):
        assert f'$.level = "{name}"' in alternatives
    assert "&&" not in inner


def test_levels_and_filters_combine_and_level_field_option() -> None:
    plan = build_plan(
        query(filters=(flt("svc", "eq", "a"),), levels=(LogLevel.CRITICAL,)), "log.level"
    )
    assert plan.pattern.startswith('{ $.svc = "a" && ($.log.level = "critical" || ')
    assert '$.log.level = "FATAL"' in plan.pattern


def test_text_alone_is_a_quoted_term() -> None:
    plan = build_plan(query(text='connection "reset": peer'))
    assert plan.pattern == '"connection \\"reset\\": peer"'
    assert plan.local_text == ""
    assert plan.warnings == ()


def test_text_with_filters_is_applied_locally_with_a_warning() -> None:
    plan = build_plan(query(text="timeout", filters=(flt("svc", "eq", "a"),)))
    assert plan.pattern == '{ $.svc = "a" }'
    assert plan.local_text == "timeout"
    assert len(plan.warnings) == 1 and "text" in plan.warnings[0]


def test_regex_is_local_with_a_warning() -> None:
    regex = flt("path", "regex", r"^/v\d+/items")
    plan = build_plan(query(filters=(regex, flt("svc", "eq", "a"))))
    assert plan.pattern == '{ $.svc = "a" }'
    assert plan.local_filters == (regex,)
    assert any("regex" in warning for warning in plan.warnings)


def test_fields_that_are_not_selectors_are_local() -> None:
    odd = flt("@timestamp", "exists")
    plan = build_plan(query(filters=(odd,)))
    assert plan.pattern == ""
    assert plan.local_filters == (odd,)
    assert plan.warnings


def test_wildcards_in_values_are_rechecked_locally() -> None:
    eq = flt("name", "eq", "a*b")
    ne = flt("name", "ne", "x*")
    plan = build_plan(query(filters=(eq, ne)))
    assert plan.pattern == '{ $.name = "a*b" }'  # wide on the server ...
    assert plan.local_filters == (eq, ne)  # ... exact here; the != cannot go to the server


def test_empty_query_has_no_pattern() -> None:
    assert build_plan(query()).pattern == ""


def test_too_long_pattern_is_invalid_input() -> None:
    filters = tuple(flt(f"f{i}", "eq", "v" * 60) for i in range(20))
    with pytest.raises(InvalidInput):
        build_plan(query(filters=filters))


# --------------------------------------------------------------------------- cursor, events


def test_cursor_round_trip_and_foreign_cursor() -> None:
    cursor = encode_cursor("token/with+chars==", "abc123")
    assert decode_cursor(cursor, "abc123") == "token/with+chars=="
    assert "token" not in cursor  # opaque
    with pytest.raises(CursorExpired):
        decode_cursor(cursor, "other-query")
    for junk in ("", "not base64 !", "e30", "bnVsbA"):  # "{}" and "null" encoded
        with pytest.raises(CursorExpired):
            decode_cursor(junk, "abc123")


def test_parse_json_event() -> None:
    body = {"level": "WARN", "msg": "slow query", "db": {"ms": 1200}, "ok": True}
    entry = parse_event(
        {"timestamp": 1767268800123, "message": json.dumps(body) + "\n", "logStreamName": "s/1"}
    )
    assert entry.timestamp == datetime(2026, 1, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert entry.level is LogLevel.WARNING
    assert entry.message == "slow query"
    assert entry.fields["db"] == {"ms": 1200}
    assert entry.fields["logStreamName"] == "s/1"


@pytest.mark.parametrize(
    ("body", "level"),
    [
        ({"severity": "error", "message": "m"}, LogLevel.ERROR),
        ({"levelname": "CRITICAL", "message": "m"}, LogLevel.CRITICAL),
        ({"level": 30, "msg": "m"}, LogLevel.INFO),
        ({"level": "verbose", "msg": "m"}, None),
    ],
)
def test_parse_levels(body: dict[str, object], level: LogLevel | None) -> None:
    entry = parse_event({"timestamp": 0, "message": json.dumps(body), "logStreamName": "s"})
    assert entry.level == level


def test_parse_plain_event() -> None:
    entry = parse_event({"timestamp": 0, "message": "ERROR boom {", "logStreamName": "web-1"})
    assert entry.message == "ERROR boom {"
    assert entry.level is None
    assert dict(entry.fields) == {"logStreamName": "web-1"}
    assert entry.timestamp == datetime(1970, 1, 1, tzinfo=UTC)
    nan = parse_event({"timestamp": 0, "message": '{"x": NaN}', "logStreamName": "w"})
    assert dict(nan.fields) == {"logStreamName": "w"}  # not valid JSON for the SDK
