"""Configuration handlers: one backed by host storage, one serving static options."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from imbi_plugin_sdk import (
    ConfigKey,
    ConfigurationPlugin,
    ConfigValue,
    ConfigWrite,
    ConnectionResult,
    CredentialField,
    CredentialsInvalid,
    DataType,
    Hints,
    InvalidInput,
    OptionField,
    OptionType,
    Permissions,
    PluginManifest,
    PluginType,
    UpstreamUnavailable,
)

from . import TEMPLATE


class ExampleConfiguration(ConfigurationPlugin):
    """Keys live in the host's key-value storage under the expanded search template."""

    manifest = PluginManifest(
        slug="example-config",
        name="Example configuration",
        description="Stores configuration in the platform's own storage.",
        version="1.2.0",
        api_version="1.0",
        plugin_type=PluginType.CONFIGURATION,
        publisher="Imbi",
        options=(
            OptionField(name="prefix", label="Key prefix", default=""),
            OptionField(name="max_keys", label="Max keys", type=OptionType.INTEGER, default=500),
            OptionField(
                name="read_only", label="Read only", type=OptionType.BOOLEAN, default=False
            ),
            OptionField(
                name="mode",
                label="Mode",
                choices=(
                    "normal",
                    "flaky",
                    "denied",
                    "crash",
                    "garbage",
                    "nan",
                    "object",
                    "huge",
                    "exit",
                ),
                default="normal",
            ),
        ),
        credentials=(CredentialField(name="api_token", label="API token", secret=True),),
        permissions=Permissions(storage=True, network_hosts=("api.example.com",)),
        hints=Hints(cacheable=True, cache_ttl=30),
        service_template=TEMPLATE,
    )

    def _mode_check(self) -> None:
        mode = self.context.options.get("mode")
        if mode == "flaky":
            raise UpstreamUnavailable("example backend is throttling", retry_after=7)
        if mode == "denied":
            raise CredentialsInvalid("example backend rejected the API token")
        if mode == "crash":  # a plugin bug that quotes a secret in its message
            raise RuntimeError(f"boom while using token {self.credentials['api_token']}")

    def _prefix(self) -> str:
        return f"{self.context.search_template}{self.context.options.get('prefix', '')}"

    def _store(self):  # type: ignore[no-untyped-def]
        if self.context.storage is None:
            raise UpstreamUnavailable("host storage is not available")
        return self.context.storage

    def test_connection(self) -> ConnectionResult:
        if self.credentials.get("api_token", "") == "bad":
            return ConnectionResult.problem("the API token was rejected")
        return ConnectionResult.success("example backend reachable")

    def _records(self) -> dict[str, dict[str, object]]:
        store = self._store()
        prefix = self._prefix()
        records = {}
        for name in store.keys(prefix):
            raw = store.get(name)
            if raw is not None:
                records[name[len(prefix) :]] = json.loads(raw)
        return records

    def list_keys(self) -> list[ConfigKey]:
        self._mode_check()
        if self.context.options.get("mode") == "garbage":
            return "not a list"  # type: ignore[return-value]
        return [
            ConfigKey(
                key=key,
                data_type=DataType(rec["data_type"]),
                secret=bool(rec["secret"]),
                last_modified=datetime.fromisoformat(str(rec["modified"])),
            )
            for key, rec in sorted(self._records().items())
        ]

    def get_values(self, keys: Sequence[str] | None = None) -> list[ConfigValue]:
        self._mode_check()
        mode = self.context.options.get("mode")
        if mode == "nan":  # a model forced past its own validation
            value = ConfigValue(key="ratio", data_type=DataType.NUMBER, value=0.5)
            object.__setattr__(value, "value", float("nan"))
            return [value]
        if mode == "object":
            return [object()]  # type: ignore[list-item]
        if mode == "huge":  # 50 MB, valid, but over the host's reply cap
            return [ConfigValue(key="blob", value="x" * (50 * 1024 * 1024))]
        if mode == "exit":
            raise SystemExit("a plugin must not stop the server")
        wanted = None if keys is None else set(keys)
        return [
            ConfigValue(
                key=key,
                data_type=DataType(rec["data_type"]),
                value=rec["value"],
                secret=bool(rec["secret"]),
                last_modified=datetime.fromisoformat(str(rec["modified"])),
            )
            for key, rec in sorted(self._records().items())
            if wanted is None or key in wanted
        ]

    def set_value(self, key: str, value: ConfigWrite) -> ConfigKey:
        self._mode_check()
        if self.context.options.get("read_only"):
            raise InvalidInput("this binding is read only", fields={"key": "read only"})
        if len(self._records()) >= int(self.context.options.get("max_keys", 500)):  # type: ignore[call-overload]
            raise InvalidInput("too many keys", fields={"key": "limit reached"})
        modified = datetime.now(UTC)
        record = {
            "data_type": value.data_type.value,
            "value": value.value,
            "secret": value.secret,
            "modified": modified.isoformat(),
        }
        self._store().set(self._prefix() + key, json.dumps(record))
        return ConfigKey(
            key=key, data_type=value.data_type, secret=value.secret, last_modified=modified
        )

    def delete_key(self, key: str) -> None:
        self._mode_check()
        self._store().delete(self._prefix() + key)


class StaticConfiguration(ConfigurationPlugin):
    """Serves the ``values`` option as read-only keys: a no-op plugin for benchmarks."""

    manifest = PluginManifest(
        slug="example-static",
        name="Example static configuration",
        description="Read-only keys from the binding's options.",
        version="1.2.0",
        api_version="1.0",
        plugin_type=PluginType.CONFIGURATION,
        options=(OptionField(name="values", label="Values", type=OptionType.MAPPING, default={}),),
    )

    def test_connection(self) -> ConnectionResult:
        return ConnectionResult.success("nothing to connect to")

    def _values(self) -> dict[str, object]:
        return dict(self.context.options.get("values") or {})  # type: ignore[call-overload]

    def list_keys(self) -> list[ConfigKey]:
        return [ConfigKey(key=k) for k in sorted(self._values())]

    def get_values(self, keys: Sequence[str] | None = None) -> list[ConfigValue]:
        values = self._values()
        return [
            ConfigValue(key=k, value=str(v))
            for k, v in sorted(values.items())
            if keys is None or k in keys
        ]

    def set_value(self, key: str, value: ConfigWrite) -> ConfigKey:
        raise InvalidInput("static configuration is read only")

    def delete_key(self, key: str) -> None:
        raise InvalidInput("static configuration is read only")
