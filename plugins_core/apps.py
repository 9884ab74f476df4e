"""App config for the plugin framework host (models, registry, resolution, API, admin)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.apps import AppConfig

if TYPE_CHECKING:
    from plugins_core.models import Plugin, ThirdPartyService


def _declared_permissions(handler: str) -> dict[str, Any] | None:
    """What the loaded manifest of ``handler`` declares (``models.seams``)."""
    from plugins_core import registry

    entry = registry.current().get(handler)
    if entry is None or entry.manifest is None:
        return None
    return entry.manifest.permissions.to_dict()


def _service_host_errors(service: ThirdPartyService, extra: list[Plugin]) -> dict[str, str]:
    """The hosts check of a service's settings (``models.seams``)."""
    from plugins_core.serving.hosts import service_host_errors

    return service_host_errors(service, extra=extra)


class PluginsCoreConfig(AppConfig):
    name = "plugins_core"
    label = "plugins_core"
    verbose_name = "Plugins"

    def ready(self) -> None:
        from django.conf import settings

        from plugins_core import registry
        from plugins_core.distributions import integrity
        from plugins_core.isolation import capabilities, testing
        from plugins_core.models import seams
        from plugins_core.registry import checks  # noqa: F401  (registers the check)
        from plugins_core.serving import invalidation

        # A runner started by any process of this uid (a Celery worker's) must not read or
        # trace this one: not dumpable from the start. Then probe what the host enforces
        # (cached per process; a forked worker probes again on first use).
        capabilities.harden_host()
        capabilities.log_summary()

        # The layers below reach the ones above only through what is handed in here.
        seams.connect(
            declared_permissions=_declared_permissions,
            service_host_errors=_service_host_errors,
        )
        testing.use_registry(lambda: registry.current().entries.values())
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
