"""SDK values to and from the wire: arguments and results of handler methods.

An SDK model (anything with ``to_dict``/``from_dict`` among ``MODELS``) travels as
``{"$": "ConfigKey", "v": {...}}``; lists travel element-wise; ``None``, strings, numbers
and booleans as themselves. Anything else (an arbitrary object, ``NaN``, a dict that is not
a model) cannot be encoded: ``ValueError`` names what was found, never its value.
"""

from __future__ import annotations

from typing import Any

from plugins_core.sdk import (
    ConfigKey,
    ConfigValue,
    ConfigWrite,
    ConnectionResult,
    Histogram,
    LogQuery,
    LogResult,
)

from .protocol import check_json

MODELS: dict[str, Any] = {
    cls.__name__: cls
    for cls in (ConfigKey, ConfigValue, ConfigWrite, ConnectionResult, Histogram, LogQuery, LogResult)
}

__all__ = ["MODELS", "decode_value", "encode_value"]


def encode_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        check_json(value)
        return value
    if isinstance(value, list | tuple):
        return [encode_value(item) for item in value]
    name = type(value).__name__
    if MODELS.get(name) is type(value):
        data = value.to_dict()
        check_json(data)
        return {"$": name, "v": data}
    raise ValueError(f"{name} is not an SDK model or JSON value")


def decode_value(data: Any) -> Any:
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return [decode_value(item) for item in data]
    if isinstance(data, dict) and set(data) == {"$", "v"} and data["$"] in MODELS:
        if not isinstance(data["v"], dict):
            raise ValueError(f"{data['$']} payload is not an object")
        return MODELS[data["$"]].from_dict(data["v"])
    raise ValueError("value is not an encoded SDK model")
