"""GitHub failures map to SDK errors, and no error or result ever carries the token."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from imbi_plugin_sdk import (
    ConfigWrite,
    Conflict,
    CredentialsInvalid,
    CredentialsMissing,
    InvalidInput,
    NotFound,
    PluginError,
    PluginTimeout,
    UpstreamUnavailable,
)

WRONG = "ghp_WrongToken9876543210zyxwvuZYXWVU00"
SECRET_VALUE = "another-Secret-value-0b7e"


def _operations(plugin: Any) -> list[Callable[[], object]]:
    return [
        plugin.list_keys,
        plugin.get_values,
        lambda: plugin.get_values(["A"]),
        lambda: plugin.set_value("A", ConfigWrite(data_type="string", value="v")),
        lambda: plugin.set_value("S", ConfigWrite(data_type="secret", value=SECRET_VALUE)),
        lambda: plugin.delete_key("A"),
    ]


def _assert_clean(error: PluginError, *secrets: str) -> None:
    rendered = json.dumps(error.to_dict()) + str(error) + repr(error) + error.detail
    for secret in secrets:
        assert secret not in rendered


def test_wrong_token_is_credentials_invalid_everywhere(github: Any, make_plugin: Any) -> None:
    plugin = make_plugin(token=WRONG)
    for operation in _operations(plugin):
        with pytest.raises(CredentialsInvalid) as caught:
            operation()
        _assert_clean(caught.value, WRONG, github.token, SECRET_VALUE)
    result = plugin.test_connection()
    assert not result.ok and "token rejected" in result.message
    assert WRONG not in json.dumps(result.to_dict())


def test_missing_token_is_credentials_missing(github: Any, make_plugin: Any) -> None:
    for plugin in (make_plugin(token=None), make_plugin(token="")):
        for operation in _operations(plugin):
            with pytest.raises(CredentialsMissing):
                operation()
        result = plugin.test_connection()
        assert not result.ok and "missing" in result.message
    assert github.log == []


def test_primary_rate_limit_is_upstream_unavailable_until_reset(
    github: Any, make_plugin: Any
) -> None:
    github.rate_limit_reset = int(time.time()) + 120
    for operation in _operations(make_plugin()):
        with pytest.raises(UpstreamUnavailable) as caught:
            operation()
        assert caught.value.retry_after is not None
        assert 115 <= caught.value.retry_after <= 121
    assert not make_plugin().test_connection().ok


@pytest.mark.parametrize(
    ("status", "headers", "message", "expected"),
    [
        (429, {"Retry-After": "30"}, "slow down", 30),
        (429, {}, "slow down", 5),
        (403, {"Retry-After": "61"}, "You have exceeded a secondary rate limit", 61),
        (403, {}, "You have exceeded a secondary rate limit.", 60),
        (403, {"X-RateLimit-Remaining": "0"}, "API rate limit exceeded", 60),
    ],
)
def test_secondary_rate_limits(
    github: Any,
    make_plugin: Any,
    status: int,
    headers: dict[str, str],
    message: str,
    expected: int,
) -> None:
    github.forced = (status, headers, {"message": message})
    with pytest.raises(UpstreamUnavailable) as caught:
        make_plugin().list_keys()
    assert caught.value.retry_after == expected


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (403, CredentialsInvalid),
        (404, NotFound),
        (409, Conflict),
        (422, InvalidInput),
        (400, InvalidInput),
        (500, UpstreamUnavailable),
        (502, UpstreamUnavailable),
        (503, UpstreamUnavailable),
    ],
)
def test_status_codes_map_to_sdk_errors(
    github: Any, make_plugin: Any, status: int, kind: type[PluginError]
) -> None:
    github.forced = (status, {}, {"message": f"failed; your token was {github.token}"})
    with pytest.raises(kind) as caught:
        make_plugin().list_keys()
    assert type(caught.value) is kind
    _assert_clean(caught.value, github.token)


def test_validation_errors_keep_githubs_reason(github: Any, make_plugin: Any) -> None:
    github.forced = (
        422,
        {},
        {"message": "Validation Failed", "errors": [{"code": "custom", "message": "too long"}]},
    )
    with pytest.raises(InvalidInput) as caught:
        make_plugin().set_value("A", ConfigWrite(data_type="string", value="v"))
    assert "Validation Failed (too long)" in caught.value.detail


def test_unknown_repository_is_not_found(github: Any, make_plugin: Any) -> None:
    plugin = make_plugin(template="acme/nope")
    for operation in _operations(plugin)[:5]:
        with pytest.raises(NotFound) as caught:
            operation()
        assert "acme/nope" in caught.value.detail
    plugin.delete_key("A")  # deleting is idempotent: nothing there is not an error
    result = plugin.test_connection()
    assert not result.ok and "not found" in result.message
    assert result.details["repository"] == "acme/nope"


def test_connection_success(github: Any, make_plugin: Any) -> None:
    result = make_plugin().test_connection()
    assert result.ok, result.message
    assert dict(result.details) == {"repository": "acme/billing", "visibility": "private"}
    assert github.calls() == [
        ("GET", "/repos/acme/billing"),
        ("GET", "/repos/acme/billing/actions/variables"),
    ]


def test_connection_reports_a_token_without_actions_access(github: Any, make_plugin: Any) -> None:
    github.forced = (403, {}, {"message": "Resource not accessible by integration"})
    result = make_plugin().test_connection()
    assert not result.ok
    assert "Resource not accessible by integration" in result.message


def test_slow_github_is_a_plugin_timeout(github: Any, make_plugin: Any) -> None:
    github.delay = 1.0
    with pytest.raises(PluginTimeout):
        make_plugin(timeout=0.25).list_keys()
    assert not make_plugin(timeout=0.25).test_connection().ok


def test_unreachable_github_is_upstream_unavailable(github: Any, make_plugin: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    plugin = make_plugin(settings={"base_url": f"http://127.0.0.1:{port}"})
    with pytest.raises(UpstreamUnavailable) as caught:
        plugin.list_keys()
    _assert_clean(caught.value, github.token)


def test_unusable_public_key_is_upstream_unavailable(github: Any, make_plugin: Any) -> None:
    github.public_key = lambda repo, query, body: (200, {"key_id": "1", "key": "not base64!"})
    with pytest.raises(UpstreamUnavailable) as caught:
        make_plugin().set_value("S", ConfigWrite(data_type="secret", value=SECRET_VALUE))
    _assert_clean(caught.value, SECRET_VALUE, github.token)
    assert [m for m, _ in github.calls()] == ["GET"], "nothing was uploaded"


def test_non_json_answer_is_upstream_unavailable(github: Any, make_plugin: Any) -> None:
    github.get_repo = lambda repo, query, body: (200, ["not", "an", "object"])
    assert not make_plugin().test_connection().ok
    github.list_variables = lambda repo, query, body: (200, {"total_count": 1})
    with pytest.raises(UpstreamUnavailable):
        make_plugin().list_keys()
