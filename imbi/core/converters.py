"""URL converters. ``<id:...>``: a database row id, 1 to 2**63 - 1.

Django's ``int`` converter accepts any number of digits, so an id past PostgreSQL's
``bigint`` (``/projects/9223372036854775808``) reached the database and answered 500. An id
outside the range never matches the route here: the URL is a plain 404, like any unknown id
(docs/security.md). Registered on import; every URL module that uses ``<id:...>`` imports it.
"""

from __future__ import annotations

from django.urls import register_converter

MAX_ID = 2**63 - 1


class RowId:
    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= MAX_ID:
            raise ValueError(f"row id out of range: {value}")
        return number

    def to_url(self, value: int) -> str:
        return str(int(value))


register_converter(RowId, "id")
