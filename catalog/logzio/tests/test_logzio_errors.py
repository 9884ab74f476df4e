"""Upstream failures of the Logz.io emulator map to SDK errors that never carry the token."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from imbi_plugin_sdk import (
    Conflict,
    CredentialsInvalid,
    CredentialsMissing,
    InvalidInput,
    LogQuery,
    NotFound,
    PluginError,
    PluginTimeout,
    UpstreamUnavailable,
)


def _query() -> LogQuery:
    return LogQuery.ending_now(timedelta(hours=1), limit=10)


def _assert_no_secret(error: PluginError, *secrets: str) -> None:
    rendered = json.dumps(error.to_dict()) + str(error) + repr(error) + error.detail
    for secret in secrets:
        assert secret not in rendered


def test_wrong_token_is_credentials_invalid(logzio: Any, make_plugin: Any) -> None:
    wrong = "lz-wrong-token-0123456789abcdef0123456789"
    with pytest.raises(CredentialsInvalid) as caught:
        make_plugin(token=wrong).search(_query())
    _assert_no_secret(caught.value, wrong, logzio.token)
    assert logzio.bodies == [], "the emulator refused the request before the body"


def test_missing_token_is_credentials_missing(logzio: Any, make_plugin: Any) -> None:
    for plugin in (make_plugin(token=None), make_plugin(token="")):
        with pytest.raises(CredentialsMissing):
            plugin.search(_query())
        result = plugin.test_connection()
        assert not result.ok and "missing" in result.message
    assert logzio.bodies == []


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "17"}, 17),
        ({"Retry-After": "2.5"}, 3),
        ({}, 5),
        ({"Retry-After": "soon"}, 5),
    ],
)
def test_rate_limit_is_upstream_unavailable_with_retry_after(
    logzio: Any, make_plugin: Any, headers: dict[str, str], expected: int
) -> None:
    logzio.forced = (429, headers, {"message": "Too many requests"})
    with pytest.raises(UpstreamUnavailable) as caught:
        make_plugin().search(_query())
    assert caught.value.retry_after == expected
    assert caught.value.to_dict()["retry_after"] == expected


def test_retry_after_as_an_http_date(logzio: Any, make_plugin: Any) -> None:
    when = datetime.now(UTC) + timedelta(seconds=40)
    logzio.forced = (429, {"Retry-After": format_datetime(when, usegmt=True)}, {})
    with pytest.raises(UpstreamUnavailable) as caught:
        make_plugin().search(_query())
    assert caught.value.retry_after is not None and 35 <= caught.value.retry_after <= 41


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (500, UpstreamUnavailable),
        (502, UpstreamUnavailable),
        (503, UpstreamUnavailable),
        (403, CredentialsInvalid),
        (404, NotFound),
        (409, Conflict),
        (400, InvalidInput),
        (422, InvalidInput),
    ],
)
def test_status_codes_map_to_sdk_errors(
    logzio: Any, make_plugin: Any, status: int, kind: type[PluginError]
) -> None:
    # Logz.io echoing the token back must not leak it into the error
    logzio.forced = (status, {}, {"message": f"failed for token {logzio.token}"})
    with pytest.raises(kind) as caught:
        make_plugin().search(_query())
    assert type(caught.value) is kind
    _assert_no_secret(caught.value, logzio.token)
    if status >= 500:
        assert caught.value.retry_after is None  # type: ignore[attr-defined]


def test_upstream_message_is_kept_scrubbed(logzio: Any, make_plugin: Any) -> None:
    logzio.forced = (400, {}, {"message": f"Failed to parse query [level:(] {logzio.token}"})
    with pytest.raises(InvalidInput) as caught:
        make_plugin().search(_query())
    assert "Failed to parse query [level:(]" in caught.value.detail
    assert "***" in caught.value.detail


def test_slow_server_is_a_plugin_timeout(logzio: Any, make_plugin: Any) -> None:
    logzio.delay = 1.0
    with pytest.raises(PluginTimeout) as caught:
        make_plugin(timeout=0.25).search(_query())
    assert "0.25s" in caught.value.detail
    result = make_plugin(timeout=0.25).test_connection()
    assert not result.ok and "did not answer" in result.message


def test_unreachable_server_is_upstream_unavailable(logzio: Any, make_plugin: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    plugin = make_plugin(settings={"base_url": f"http://127.0.0.1:{port}"})
    with pytest.raises(UpstreamUnavailable) as caught:
        plugin.search(_query())
    _assert_no_secret(caught.value, logzio.token)
    assert not plugin.test_connection().ok


def test_a_response_that_is_not_a_search_answer(logzio: Any, make_plugin: Any) -> None:
    logzio.forced = (200, {}, {"unexpected": True})
    with pytest.raises(UpstreamUnavailable):
        make_plugin().search(_query())
    logzio.forced = (200, {}, {"hits": {"hits": "nope"}})
    with pytest.raises(UpstreamUnavailable):
        make_plugin().search(_query())


# --------------------------------------------------------------------------- connection


def test_connection_runs_a_one_hit_search_over_five_minutes(logzio: Any, make_plugin: Any) -> None:
    latest = logzio.docs[-1].timestamp
    logzio.add("doc-now", datetime.now(UTC) - timedelta(minutes=1), message="fresh", seq=500)
    result = make_plugin().test_connection()
    assert result.ok, result.message
    assert result.details["hits_last_5_minutes"] == "1"
    (body,) = logzio.bodies
    assert body["size"] == 1
    bounds = body["query"]["bool"]["filter"][0]["range"]["@timestamp"]
    window = datetime.fromisoformat(bounds["lte"]) - datetime.fromisoformat(bounds["gte"])
    assert timedelta(minutes=4, seconds=59) <= window <= timedelta(minutes=5)
    assert latest < datetime.fromisoformat(bounds["gte"])


def test_connection_reports_a_rejected_token(logzio: Any, make_plugin: Any) -> None:
    result = make_plugin(token="lz-wrong-token-0123456789abcdef0123456789").test_connection()
    assert not result.ok
    assert "token rejected" in result.message
    assert "lz-wrong-token" not in json.dumps(result.to_dict())


def test_connection_reports_an_outage(logzio: Any, make_plugin: Any) -> None:
    logzio.forced = (503, {}, {"message": "maintenance"})
    result = make_plugin().test_connection()
    assert not result.ok and "503" in result.message
