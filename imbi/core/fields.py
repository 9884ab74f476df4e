"""``EncryptedJSONField``: a JSON value stored as a Fernet token (see ``imbi.core.crypto``).

- The column is text holding ciphertext; every value, empty ones included, is encrypted.
- Loading a token no key opens raises ``DecryptionError`` (never returns ciphertext).
- Saving always encrypts the Python value; a value is never ciphertext, so ciphertext is
  never encrypted twice.
- Lookups other than ``isnull`` are refused: ciphertext cannot be compared or ordered.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldError
from django.db import models
from django.db.models import Lookup, Transform

from . import crypto


class EncryptedJSONField(models.TextField):  # type: ignore[type-arg]
    description = "A JSON value encrypted at rest"
    # What django-stubs types attribute access as: any JSON value, not the column's str.
    _pyi_private_set_type: Any
    _pyi_private_get_type: Any

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        where = f"{self.model._meta.label}.{self.name}" if hasattr(self, "model") else self.name
        return crypto.decrypt_json(value, where=where)

    def to_python(self, value: Any) -> Any:
        return value

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return crypto.encrypt_json(value)

    def value_to_string(self, obj: models.Model) -> str:
        raise FieldError(f"{self.name} is encrypted and cannot be serialized")

    def get_lookup(self, lookup_name: str) -> type[Lookup[Any]] | None:
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)
        raise FieldError(
            f"'{lookup_name}' lookups on encrypted field '{self.name}' are not supported"
        )

    def get_transform(self, name: str) -> type[Transform] | None:
        raise FieldError(f"transforms on encrypted field '{self.name}' are not supported")
