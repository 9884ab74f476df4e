"""Pieces every manifest-generated form shares: how a write-only value is shown.

Owns ``stored_status`` ("set" / "not set", never the value), the ``CLEAR_PREFIX`` of the
"remove the stored value" boxes, the "leave blank to keep" help text, and ``SafeJSONField``
(too-deep or NUL-carrying JSON is a field error, not a 500). Used by ``options`` and
``credentials``; imports only Django.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.forms.fields import InvalidJSONInput

CLEAR_PREFIX = "clear__"
KEEP_HELP = "Leave blank to keep the stored value."


class SafeJSONField(forms.JSONField):
    """``JSONField`` that reports too-deep or NUL-carrying JSON as a field error, not a 500."""

    def to_python(self, value: Any) -> Any:
        try:
            result = super().to_python(value)
        except RecursionError:
            raise forms.ValidationError("This JSON is nested too deeply.") from None
        if "\x00" in json.dumps(result):
            raise forms.ValidationError("JSON cannot contain NUL characters.")
        return result

    def bound_data(self, data: Any, initial: Any) -> Any:
        try:
            return super().bound_data(data, initial)
        except RecursionError:  # re-rendering the rejected input must not fail either
            return InvalidJSONInput(data)


def stored_status(is_set: bool) -> str:
    """How a write-only value is shown: only whether it is stored."""
    return "set" if is_set else "not set"


def _join(*parts: str) -> str:
    return " ".join(part for part in parts if part)
