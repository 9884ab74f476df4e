"""Result validation: what each handler method must return, and its JSON form.

Owns ``RESULTS`` (method -> expected type, and item type for lists), ``result_problem``
(why a value is not a valid result, or ``None``), ``check_result`` (raise ``PluginFailed``),
and ``encode_result``/``decode_result`` (a checked result to its JSON value and back). The
host runs every reply through these; authors run them through ``testkit`` and
``imbi-plugin check``. Messages name types, never values (a value may be a secret).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .deployment import CommitPage, Comparison, Deployment, Environment, RefPage
from .errors import PluginFailed
from .identity import (
    AuthorizationRedirect,
    DeviceAuthorization,
    DevicePoll,
    IdentityInfo,
    RevocationResult,
    TokenSet,
)
from .types import ConfigKey, ConfigValue, ConnectionResult, Histogram, JSONValue, LogResult

__all__ = ["RESULTS", "check_result", "decode_result", "encode_result", "result_problem"]

_RESULTS: dict[str, tuple[type, type | None]] = {
    "test_connection": (ConnectionResult, None),
    "list_keys": (list, ConfigKey),
    "get_values": (list, ConfigValue),
    "set_value": (ConfigKey, None),
    "delete_key": (type(None), None),
    "search": (LogResult, None),
    "histogram": (Histogram, None),
    # identity (contract 1.3)
    "begin_authorization": (AuthorizationRedirect, None),
    "exchange_code": (TokenSet, None),
    "refresh": (TokenSet, None),
    "revoke": (RevocationResult, None),
    "describe": (IdentityInfo, None),
    "start_device_authorization": (DeviceAuthorization, None),
    "poll_device_authorization": (DevicePoll, None),
    # deployment (contract 1.3)
    "list_refs": (RefPage, None),
    "list_commits": (CommitPage, None),
    "compare_refs": (Comparison, None),
    "list_environments": (list, Environment),
    "list_deployments": (list, Deployment),
    "trigger_deployment": (Deployment, None),
    "get_deployment": (Deployment, None),
}
RESULTS: Mapping[str, tuple[type, type | None]] = MappingProxyType(_RESULTS)
"""What each method must return: ``(type, item type)``; the item type is for lists."""


def _name(kind: type) -> str:
    return "None" if kind is type(None) else kind.__name__


def result_problem(method: str, result: object) -> str | None:
    """Why ``result`` is not a valid ``method`` result (``None`` when it is)."""
    if method not in RESULTS:
        return f"{method!r} is not a plugin method"
    outer, inner = RESULTS[method]
    if type(result) is not outer and not (outer is not list and isinstance(result, outer)):
        expected = f"list of {_name(inner)}" if inner is not None else _name(outer)
        return f"expected {expected}, got {type(result).__name__}"
    if inner is not None:
        assert isinstance(result, list)
        for index, item in enumerate(result):
            if not isinstance(item, inner):
                return f"item {index}: expected {_name(inner)}, got {type(item).__name__}"
    return None


def check_result(slug: str, method: str, result: Any) -> Any:
    """``result`` unchanged, or ``PluginFailed`` naming the plugin, method and problem."""
    problem = result_problem(method, result)
    if problem is not None:
        raise PluginFailed(f"plugin '{slug}' returned an invalid {method} result: {problem}")
    return result


def encode_result(method: str, result: Any) -> JSONValue:
    """The JSON value of a checked result (models through their ``to_dict``)."""
    if result is None:
        return None
    if isinstance(result, list):
        return [item.to_dict() for item in result]
    encoded: JSONValue = result.to_dict()
    return encoded


def decode_result(method: str, data: Any) -> Any:
    """The result models back from their JSON value; ``ValueError`` when it does not fit."""
    if method not in RESULTS:
        raise ValueError(f"{method!r} is not a plugin method")
    outer, inner = RESULTS[method]
    if outer is type(None):
        if data is not None:
            raise ValueError(f"{method} returns nothing")
        return None
    if inner is not None:
        if not isinstance(data, list):
            raise ValueError(f"{method} result: expected a list")
        return [_model(inner, item) for item in data]
    return _model(outer, data)


def _model(kind: type, data: Any) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{kind.__name__}: expected an object, got {type(data).__name__}")
    return kind.from_dict(data)  # type: ignore[attr-defined]
