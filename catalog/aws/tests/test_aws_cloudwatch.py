"""CloudWatchLogs against a real moto server over HTTP.

moto evaluates term and quoted-phrase patterns but returns every event for JSON patterns,
so JSON pattern building is covered in test_aws_filter_patterns.py; here the plugin's own
paging, cursors, parsing and local filtering are exercised end to end.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from imbi_plugin_aws.cloudwatch import CloudWatchLogs, encode_cursor
from imbi_plugin_sdk import (
    Credentials,
    CredentialsMissing,
    CursorExpired,
    InvalidInput,
    LogFilter,
    LogLevel,
    LogQuery,
    UpstreamUnavailable,
)
from imbi_plugin_sdk.testkit import assert_contract

Boto = Callable[[str], Any]
NOW = datetime.now(UTC).replace(microsecond=0)
BASE = NOW - timedelta(minutes=50)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@pytest.fixture
def group(boto: Boto, unique: str) -> str:
    name = f"/imbi-test/{unique}"
    boto("logs").create_log_group(logGroupName=name)
    return name


def write(boto: Boto, group: str, stream: str, events: list[tuple[datetime, str]]) -> None:
    logs = boto("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": ms(t), "message": m} for t, m in sorted(events)],
    )


@pytest.fixture
def logs_handler(make_handler: Callable[..., Any], group: str) -> Callable[..., CloudWatchLogs]:
    def make(**kwargs: Any) -> CloudWatchLogs:
        kwargs.setdefault("options", {"log_group": group})
        handler = make_handler(CloudWatchLogs, **kwargs)
        assert isinstance(handler, CloudWatchLogs)
        return handler

    return make


def window(**kwargs: Any) -> LogQuery:
    return LogQuery(start=BASE - timedelta(minutes=5), end=NOW + timedelta(minutes=1), **kwargs)


def page_all(handler: CloudWatchLogs, query: LogQuery) -> tuple[list[str], int]:
    """Every message over all pages, and how many pages it took."""
    messages: list[str] = []
    pages = 0
    while True:
        result = handler.search(query)
        pages += 1
        assert len(result.entries) <= query.limit
        messages += [entry.message for entry in result.entries]
        if result.next_cursor is None:
            return messages, pages
        query = dataclasses.replace(query, cursor=result.next_cursor)
        assert pages < 100, "paging does not end"


def test_contract(logs_handler: Callable[..., CloudWatchLogs], boto: Boto, group: str) -> None:
    write(boto, group, "app", [(BASE + timedelta(seconds=i), f"line {i}") for i in range(12)])
    assert_contract(logs_handler, sample_query=window(limit=5))


def test_cursor_paging_returns_every_event_exactly_once(
    logs_handler: Callable[..., CloudWatchLogs], boto: Boto, group: str
) -> None:
    expected = []
    for stream, count in (("web-1", 31), ("web-2", 26)):
        events = [(BASE + timedelta(seconds=7 * i), f"{stream} event {i}") for i in range(count)]
        write(boto, group, stream, events)
        expected += [message for _, message in events]

    messages, pages = page_all(logs_handler(), window(limit=10))
    assert len(messages) == len(set(messages)) == 57
    assert sorted(messages) == sorted(expected)
    assert pages == 6


def test_limit_and_time_range(
    logs_handler: Callable[..., CloudWatchLogs], boto: Boto, group: str
) -> None:
    write(boto, group, "s", [(BASE + timedelta(minutes=i), f"minute {i}") for i in range(30)])
    handler = logs_handler()
    inside = LogQuery(start=BASE + timedelta(minutes=10), end=BASE + timedelta(minutes=19))
    messages, _ = page_all(handler, dataclasses.replace(inside, limit=4))
    assert messages == [f"minute {i}" for i in range(10, 20)]
    first = handler.search(dataclasses.replace(inside, limit=3))
    assert [e.message for e in first.entries] == ["minute 10", "minute 11", "minute 12"]
    assert first.next_cursor is not None


def test_text_search_uses_a_quoted_term(
    logs_handler: Callable[..., CloudWatchLogs], boto: Boto, group: str
) -> None:
    events = [(BASE + timedelta(seconds=i), f"request {i} ok") for i in range(20)]
    events += [
        (BASE + timedelta(seconds=30 + i), f'request failed: "db timeout" #{i}') for i in range(3)
    ]
    write(boto, group, "s", events)
    result = logs_handler().search(window(text="failed: "))
    assert [e.message for e in result.entries] == [m for _, m in events[20:]]
    assert result.warnings == ()


def test_json_events_become_fields_and_regex_filters_locally(
    logs_handler: Callable[..., CloudWatchLogs], boto: Boto, group: str
) -> None:
    lines = [
        {"level": "info", "message": "GET /v1/items/1", "path": "/v1/items/1"},
        {"level": "error", "message": "GET /v2/users/9", "path": "/v2/users/9"},
        {"level": "info", "message": "GET /v1/items/22", "path": "/v1/items/22"},
    ]
    events = [(BASE + timedelta(seconds=i), json.dumps(line)) for i, line in enumerate(lines)]
    events.append((BASE + timedelta(seconds=9), "plain text line"))
    write(boto, group, "api", events)
    handler = logs_handler()

    everything = handler.search(window())
    assert [e.message for e in everything.entries] == [
        "GET /v1/items/1",
        "GET /v2/users/9",
        "GET /v1/items/22",
        "plain text line",
    ]
    assert [e.level for e in everything.entries] == [
        LogLevel.INFO,
        LogLevel.ERROR,
        LogLevel.INFO,
        None,
    ]
    assert everything.entries[1].fields["path"] == "/v2/users/9"
    assert dict(everything.entries[3].fields) == {"logStreamName": "api"}

    regex = LogFilter(field="path", op="regex", value=r"^/v1/items/\d{2,}$")  # type: ignore[arg-type]
    result = handler.search(window(filters=(regex,)))
    assert [e.message for e in result.entries] == ["GET /v1/items/22"]
    assert any("regex" in warning for warning in result.warnings)


def test_local_filtering_keeps_paging_exact(
    logs_handler: Callable[..., CloudWatchLogs], boto: Boto, group: str
) -> None:
    # clustered matches: a page of raw events can hold more hits than the page still needs
    hits = {*range(4), *range(8, 16), *range(30, 34)}
    events = [
        (BASE + timedelta(seconds=i), json.dumps({"n": i, "tag": "hit" if i in hits else "miss"}))
        for i in range(40)
    ]
    write(boto, group, "s", events)
    regex = LogFilter(field="tag", op="regex", value="^hit$")  # type: ignore[arg-type]
    handler = logs_handler()
    seen: list[int] = []
    query = window(filters=(regex,), limit=5)
    while True:
        result = handler.search(query)
        seen += [int(e.fields["n"]) for e in result.entries]  # type: ignore[call-overload]
        if result.next_cursor is None:
            break
        query = dataclasses.replace(query, cursor=result.next_cursor)
    assert seen == sorted(hits)


def test_cursor_from_another_query_is_expired(
    logs_handler: Callable[..., CloudWatchLogs], boto: Boto, group: str
) -> None:
    write(boto, group, "s", [(BASE + timedelta(seconds=i), f"line {i}") for i in range(10)])
    handler = logs_handler()
    first = handler.search(window(limit=3))
    assert first.next_cursor is not None
    with pytest.raises(CursorExpired):
        handler.search(window(limit=3, text="line", cursor=first.next_cursor))
    with pytest.raises(CursorExpired):
        handler.search(window(limit=3, cursor="garbage"))
    # a cursor for the same query but a different log group
    other = logs_handler(options={"log_group": group + "-other"})
    with pytest.raises(CursorExpired):
        other.search(window(limit=3, cursor=first.next_cursor))
    # the limit is not part of the query identity: a bigger page continues fine
    rest = handler.search(window(limit=50, cursor=first.next_cursor))
    assert [e.message for e in rest.entries] == [f"line {i}" for i in range(3, 10)]


def test_forged_cursor_token_never_duplicates(
    logs_handler: Callable[..., CloudWatchLogs], boto: Boto, group: str
) -> None:
    write(boto, group, "s", [(BASE + timedelta(seconds=i), f"line {i}") for i in range(5)])
    handler = logs_handler()
    good = handler.search(window(limit=2))
    assert good.next_cursor is not None
    # right query hash, token CloudWatch does not know: an empty last page, not a restart
    query_hash = json.loads(base64.urlsafe_b64decode(good.next_cursor + "=="))["q"]
    bogus = handler.search(window(limit=2, cursor=encode_cursor("nope@nope@1", query_hash)))
    assert bogus.entries == () and bogus.next_cursor is None


def test_search_template_is_the_log_group_when_no_option(
    make_handler: Callable[..., Any], boto: Boto, group: str
) -> None:
    write(boto, group, "s", [(BASE, "from the template group")])
    handler = make_handler(CloudWatchLogs, search_template=group)
    assert [e.message for e in handler.search(window()).entries] == ["from the template group"]
    assert handler.test_connection().ok


def test_missing_log_group_settings(make_handler: Callable[..., Any]) -> None:
    handler = make_handler(CloudWatchLogs)
    with pytest.raises(InvalidInput) as caught:
        handler.search(window())
    assert "log_group" in caught.value.fields
    assert handler.test_connection().ok is False


def test_test_connection(logs_handler: Callable[..., CloudWatchLogs], group: str) -> None:
    good = logs_handler().test_connection()
    assert good.ok, good.message
    assert good.details["log_group"] == group
    missing = logs_handler(options={"log_group": group + "/nope"}).test_connection()
    assert missing.ok is False
    assert group + "/nope" in missing.message


def test_unknown_log_group_search_is_not_found(
    logs_handler: Callable[..., CloudWatchLogs], group: str
) -> None:
    from imbi_plugin_sdk import NotFound

    with pytest.raises(NotFound) as caught:
        logs_handler(options={"log_group": group + "/nope"}).search(window())
    assert group + "/nope" in str(caught.value)


def test_missing_credentials_and_unreachable_endpoint(
    logs_handler: Callable[..., CloudWatchLogs], closed_port_url: str, secret_key: str
) -> None:
    with pytest.raises(CredentialsMissing):
        logs_handler(creds=Credentials(access_key_id="AKIAIMBITESTKEY00001")).search(window())
    down = logs_handler(url=closed_port_url, timeout=2)
    with pytest.raises(UpstreamUnavailable) as caught:
        down.search(window())
    assert secret_key not in str(caught.value)
    result = down.test_connection()
    assert result.ok is False and secret_key not in result.message
