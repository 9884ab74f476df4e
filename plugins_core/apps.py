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
        from plugins_core.isolation import capabilities
        from plugins_core.pages import admin  # noqa: F401  (registers the admin pages)
        from plugins_core.registry import checks  # noqa: F401  (registers the check)
        from plugins_core.serving import invalidation

        # A runner started by any process of this uid (a Celery worker's) must not read or
        # trace this one: not dumpable from the start. Then probe what the host enforces
        # (cached per process; a forked worker probes again on first use).
        capabilities.harden_host()
        capabilities.log_summary()
        invalidation.connect()
        registry.configure(
            trusted=settings.IMBI_TRUSTED_PLUGIN_DISTRIBUTIONS,
            import_timeout=settings.IMBI_PLUGIN_IMPORT_TIMEOUT,
        )
        registry.set_guard(integrity.load_guard)

        if settings.IMBI_PLUGINS_STRICT:
            registry.rebuild(strict=True)  # a broken plugin stops start-up, by request
