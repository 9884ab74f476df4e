"""App config for the plugin framework host (models, registry, resolution, API, admin)."""

from django.apps import AppConfig


class PluginsCoreConfig(AppConfig):
    name = "plugins_core"
    label = "plugins_core"
    verbose_name = "Plugins"
