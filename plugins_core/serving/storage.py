"""Host key-value storage handed to plugins that declare ``permissions.storage``."""

from __future__ import annotations

from plugins_core.models import PluginStorage


class DatabaseKeyValueStore:
    """A ``KeyValueStore`` over ``PluginStorage`` rows of one installed plugin."""

    def __init__(self, plugin_id: int) -> None:
        self.plugin_id = plugin_id

    def get(self, key: str) -> str | None:
        row = PluginStorage.objects.filter(plugin_id=self.plugin_id, key=key).first()
        return None if row is None else str(row.value)

    def set(self, key: str, value: str) -> None:
        PluginStorage.objects.update_or_create(
            plugin_id=self.plugin_id, key=key, defaults={"value": value}
        )

    def delete(self, key: str) -> None:
        PluginStorage.objects.filter(plugin_id=self.plugin_id, key=key).delete()

    def keys(self, prefix: str = "") -> list[str]:
        rows = PluginStorage.objects.filter(plugin_id=self.plugin_id, key__startswith=prefix)
        return sorted(rows.values_list("key", flat=True))
