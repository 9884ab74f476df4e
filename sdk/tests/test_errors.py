"""PluginError codes, statuses and the dict round trip across a process boundary."""

import json
import pickle

import pytest
from imbi_plugin_sdk import (
    Conflict,
    CredentialsInvalid,
    CredentialsMissing,
    CursorExpired,
    InvalidInput,
    ManifestError,
    NotFound,
    NotSupported,
    OptionValidationError,
    PermissionDenied,
    PluginError,
    PluginTimeout,
    UpstreamUnavailable,
)

EXPECTED = [
    (NotFound, "not_found", 404),
    (Conflict, "conflict", 409),
    (InvalidInput, "invalid_input", 400),
    (CredentialsMissing, "credentials_missing", 503),
    (CredentialsInvalid, "credentials_invalid", 502),
    (UpstreamUnavailable, "upstream_unavailable", 503),
    (PluginTimeout, "plugin_timeout", 504),
    (CursorExpired, "cursor_expired", 409),
    (NotSupported, "not_supported", 501),
    (PermissionDenied, "plugin_permission_denied", 403),
]


@pytest.mark.parametrize(("kind", "code", "status"), EXPECTED)
def test_from_dict_picks_subclass(kind: type[PluginError], code: str, status: int) -> None:
    assert (kind.code, kind.http_status) == (code, status)
    error = kind("something happened")
    again = PluginError.from_dict(json.loads(json.dumps(error.to_dict())))
    assert type(again) is kind
    assert again.detail == "something happened"
    assert again.to_dict() == error.to_dict()


def test_retry_after_survives() -> None:
    error = UpstreamUnavailable("throttled", retry_after=30)
    assert error.to_dict() == {
        "code": "upstream_unavailable",
        "detail": "throttled",
        "retry_after": 30,
    }
    again = PluginError.from_dict(json.loads(json.dumps(error.to_dict())))
    assert isinstance(again, UpstreamUnavailable)
    assert again.retry_after == 30


def test_invalid_input_fields_survive_and_pickle() -> None:
    error = InvalidInput("bad", fields={"key": "too long"})
    again = PluginError.from_dict(error.to_dict())
    assert isinstance(again, InvalidInput)
    assert again.fields == {"key": "too long"}
    unpickled = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert isinstance(unpickled, InvalidInput)
    assert unpickled.fields == {"key": "too long"}


def test_unknown_code_falls_back_to_base() -> None:
    again = PluginError.from_dict({"code": "from_the_future", "detail": "d", "new_field": 1})
    assert type(again) is PluginError
    assert again.detail == "d"


def test_plugin_subclass_does_not_hijack_code() -> None:
    class MyNotFound(NotFound):
        pass

    assert type(PluginError.from_dict({"code": "not_found"})) is NotFound
    assert MyNotFound("x").to_dict()["code"] == "not_found"


def test_validation_errors() -> None:
    error = ManifestError("options[1].type", "'float' is not one of string")
    assert error.field == "options[1].type"
    assert str(error) == "options[1].type: 'float' is not one of string"
    assert isinstance(error, ValueError)
    assert error.prefixed("x").field == "x.options[1].type"
    single = OptionValidationError("region", "is required")
    assert single.errors == {"region": "is required"}
    many = OptionValidationError({"a": "bad", "b": "worse"})
    assert str(many) == "a: bad; b: worse"
