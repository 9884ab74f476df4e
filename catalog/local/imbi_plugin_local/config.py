"""``local-config``: a project's configuration kept in the platform's own database.

Owns ``LocalConfiguration`` and its record format. Values live in the host's key-value
storage (``context.storage``, granted by ``permissions.storage``; the host encrypts them at
rest). Each project's keys sit under a namespace: the expanded search template
(``demo/billing-api/``) or, without one, ``{organization}/{project_slug}/``; a namespace that
does not end in ``/`` gets one, so ``demo/billing`` never sees ``demo/billing-v2``'s keys.

A stored record is the JSON object ``{"data_type", "value", "secret", "modified"}``
(``modified`` is ISO 8601 UTC). Records that cannot be read are skipped and logged, never
shown half-parsed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from imbi_plugin_sdk import (
    ConfigKey,
    ConfigurationPlugin,
    ConfigValue,
    ConfigWrite,
    ConnectionResult,
    DataType,
    InvalidInput,
    KeyValueStore,
    Permissions,
    PluginManifest,
    PluginType,
    UpstreamUnavailable,
    validate_config_key,
)

from . import TEMPLATE

__all__ = ["MAX_STORAGE_KEY", "LocalConfiguration", "decode_record", "encode_record"]

MAX_STORAGE_KEY = 512
"""Longest storage key (namespace + configuration key) the host accepts."""


def encode_record(write: ConfigWrite, modified: datetime) -> str:
    """The stored JSON text of one value."""
    return json.dumps(
        {
            "data_type": write.data_type.value,
            "value": write.value,
            "secret": write.secret,
            "modified": modified.astimezone(UTC).isoformat(),
        }
    )


def decode_record(key: str, raw: str) -> ConfigValue:
    """A stored record as a ``ConfigValue``; ``ValueError`` (or ``InvalidInput``) if bad."""
    record: Any = json.loads(raw)
    if not isinstance(record, dict):
        raise ValueError("record is not an object")
    modified = record.get("modified")
    return ConfigValue(
        key=key,
        data_type=DataType(record.get("data_type", DataType.STRING)),
        value=record.get("value"),
        secret=bool(record.get("secret", False)),
        last_modified=datetime.fromisoformat(modified) if isinstance(modified, str) else None,
    )


class LocalConfiguration(ConfigurationPlugin):
    """Configuration stored by the host, namespaced per project."""

    manifest = PluginManifest(
        slug="local-config",
        name="Imbi configuration",
        description=(
            "Keeps a project's configuration in Imbi's own database, encrypted at rest. "
            "No external service or credentials needed."
        ),
        version="1.0.0",
        api_version="1.0",
        plugin_type=PluginType.CONFIGURATION,
        permissions=Permissions(storage=True),
        service_template=TEMPLATE,
        publisher="Imbi",
    )

    # ------------------------------------------------------------------ helpers

    def _store(self) -> KeyValueStore:
        if self.context.storage is None:
            raise UpstreamUnavailable("the host did not provide key-value storage")
        return self.context.storage

    def _namespace(self) -> str:
        namespace = self.context.search_template or (
            f"{self.context.organization}/{self.context.project_slug or '_'}/"
        )
        return namespace if namespace.endswith("/") else f"{namespace}/"

    def _storage_key(self, key: str) -> str:
        validate_config_key(key)
        full = self._namespace() + key
        if len(full) > MAX_STORAGE_KEY:
            raise InvalidInput(
                f"key: too long for this project's namespace (max {MAX_STORAGE_KEY} with it)",
                fields={"key": "too long"},
            )
        return full

    def _records(self, wanted: set[str] | None = None) -> list[ConfigValue]:
        store = self._store()
        namespace = self._namespace()
        values: list[ConfigValue] = []
        for name in store.keys(namespace):
            key = name[len(namespace) :]
            if wanted is not None and key not in wanted:
                continue
            raw = store.get(name)
            if raw is None:  # deleted meanwhile
                continue
            try:
                values.append(decode_record(key, raw))
            except (ValueError, TypeError, InvalidInput) as exc:
                self.context.logger.warning("skipping unreadable record %r: %s", key, exc)
        return sorted(values, key=lambda value: value.key)

    # ------------------------------------------------------------------ contract

    def test_connection(self) -> ConnectionResult:
        if self.context.storage is None:
            return ConnectionResult.problem("the host did not provide key-value storage")
        return ConnectionResult.success(
            "configuration is stored by Imbi", namespace=self._namespace()
        )

    def list_keys(self) -> list[ConfigKey]:
        return [
            ConfigKey(
                key=value.key,
                data_type=value.data_type,
                secret=value.secret,
                last_modified=value.last_modified,
            )
            for value in self._records()
        ]

    def get_values(self, keys: Sequence[str] | None = None) -> list[ConfigValue]:
        return self._records(None if keys is None else set(keys))

    def set_value(self, key: str, value: ConfigWrite) -> ConfigKey:
        storage_key = self._storage_key(key)
        modified = datetime.now(UTC)
        self._store().set(storage_key, encode_record(value, modified))
        return ConfigKey(
            key=key, data_type=value.data_type, secret=value.secret, last_modified=modified
        )

    def delete_key(self, key: str) -> None:
        self._store().delete(self._storage_key(key))
