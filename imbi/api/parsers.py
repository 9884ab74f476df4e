"""The JSON request parser: DRF's, plus the inputs PostgreSQL or Python cannot take.

Deeply nested documents (Python's recursion limit) and NUL characters (PostgreSQL text and
jsonb refuse them) become a 400 ``malformed_request`` instead of a 500.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32


def _depth(value: Any, limit: int, level: int = 1) -> None:
    if level > limit:
        raise ParseError(f"JSON nested deeper than {limit} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                raise ParseError("JSON strings cannot contain NUL characters")
            _depth(item, limit, level + 1)
    elif isinstance(value, list):
        for item in value:
            _depth(item, limit, level + 1)
    elif isinstance(value, str) and "\x00" in value:
        raise ParseError("JSON strings cannot contain NUL characters")


class SafeJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels") from None
        _depth(data, MAX_DEPTH)
        return data
