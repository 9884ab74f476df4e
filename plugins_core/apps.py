"""App config for the plugin framework host (models, registry, resolution, API, admin)."""

from django.apps import AppConfig


class PluginsCoreConfig(AppConfig):
    name = "plugins_core"
    label = "plugins_core"
    verbose_name = "Plugins"

    def ready(self) -> None:
        from django.conf import settings

        from plugins_core import registry
        from plugins_core.distributions import integrity
        from plugins_core.pages import admin  # noqa: F401  (registers the admin pages)
        from plugins_core.registry import checks  # noqa: F401  (registers the check)
        from plugins_core.serving import invalidation

        invalidation.connect()
        registry.configure(
            trusted=settings.IMBI_TRUSTED_PLUGIN_DISTRIBUTIONS,
            import_timeout=settings.IMBI_PLUGIN_IMPORT_TIMEOUT,
        )
        registry.set_guard(integrity.load_guard)
        from plugins_core.isolation.supervisor import set_env_preflight

        set_env_preflight(integrity.check_at_start)

        if settings.IMBI_PLUGINS_STRICT:
            registry.rebuild(strict=True)  # a broken plugin stops start-up, by request
