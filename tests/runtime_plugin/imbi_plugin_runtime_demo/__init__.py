"""A configuration plugin that says which version answers; ``get_values(["slow"])`` takes
SLOW seconds (an in-flight call during an upgrade)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from imbi_plugin_sdk import (
    ConfigKey,
    ConfigurationPlugin,
    ConfigValue,
    ConfigWrite,
    ConnectionResult,
    DataType,
    PluginManifest,
    PluginType,
)

VERSION = "0.0.0.dev0"
SLOW = 4.0


class RuntimeDemo(ConfigurationPlugin):
    manifest = PluginManifest(
        slug="runtime-demo",
        name="Runtime demo",
        description="Answers with its own version.",
        version=VERSION,
        api_version="1.0",
        plugin_type=PluginType.CONFIGURATION,
        publisher="Imbi tests",
    )

    def test_connection(self) -> ConnectionResult:
        return ConnectionResult.success(f"runtime-demo {VERSION}")

    def list_keys(self) -> list[ConfigKey]:
        return [ConfigKey(key=f"version-{VERSION}", data_type=DataType.STRING)]

    def get_values(self, keys: Sequence[str] | None = None) -> list[ConfigValue]:
        if keys and "slow" in keys:
            time.sleep(SLOW)
        return [ConfigValue(key="version", data_type=DataType.STRING, value=VERSION)]

    def set_value(self, key: str, value: ConfigWrite) -> ConfigKey:
        return ConfigKey(key=key, data_type=DataType.STRING)

    def delete_key(self, key: str) -> None:
        return None
