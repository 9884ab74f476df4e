"""A handler targeting a contract version this host does not support, and a non-handler."""

from __future__ import annotations

from collections.abc import Sequence

from imbi_plugin_sdk import (
    ConfigKey,
    ConfigurationPlugin,
    ConfigValue,
    ConfigWrite,
    ConnectionResult,
    PluginManifest,
    PluginType,
)


class FuturePlugin(ConfigurationPlugin):
    manifest = PluginManifest(
        slug="example-future",
        name="Example from the future",
        description="Targets api 2.0.",
        version="9.0.0",
        api_version="2.0",
        plugin_type=PluginType.CONFIGURATION,
    )

    def test_connection(self) -> ConnectionResult:
        return ConnectionResult.success()

    def list_keys(self) -> list[ConfigKey]:
        return []

    def get_values(self, keys: Sequence[str] | None = None) -> list[ConfigValue]:
        return []

    def set_value(self, key: str, value: ConfigWrite) -> ConfigKey:
        return ConfigKey(key=key)

    def delete_key(self, key: str) -> None:
        return None


NOT_A_HANDLER = object()
