"""The admin's own pages, routed under the plugin and service change lists.

Owns the URL wiring of the pages that are not ModelAdmin views: the registry page
(``plugins_core.pages.plugin_pages.RegistryView``), the "Install a plugin" wizard
(``plugins_core.pages.wizard``), a plugin's enable/disable switch and the "Test connection"
posts of plugins and services, all under ``/admin/plugins_core/plugin/`` and
``/admin/plugins_core/thirdpartyservice/``. ``PluginAdmin`` and ``ThirdPartyServiceAdmin``
put these in front of their own URLs; ``TestConnectionLink`` is their change pages' button.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin import AdminSite
from django.http import HttpRequest
from django.urls import URLPattern, path, reverse

from plugins_core.pages import plugins as plugin_pages
from plugins_core.pages import wizard


class TestConnectionLink:
    """Admin mixin: the change page's "Test connection" button posts to ``test_url_name``."""

    test_url_name: str

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> Any:
        extra = {
            "test_url": reverse(f"admin:{self.test_url_name}", args=[object_id])
            if object_id.isdigit()
            else "",
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra)  # type: ignore[misc]


def service_urls(site: AdminSite) -> list[URLPattern]:
    """Routed by ``ThirdPartyServiceAdmin``: a service's connection test."""
    return [
        path(
            "<int:object_id>/test-connection/",
            site.admin_view(plugin_pages.ConnectionTestView.as_view(scope="service")),
            name="plugins_core_thirdpartyservice_test",
        ),
    ]


def plugin_urls(site: AdminSite) -> list[URLPattern]:
    """Routed by ``PluginAdmin``: the registry page, a plugin's connection test and state
    switch, and the steps of the install wizard."""
    wrap = site.admin_view
    return [
        path(
            "registry/",
            wrap(plugin_pages.RegistryView.as_view(admin_site=site)),
            name="plugins_core_registry",
        ),
        path(
            "<int:object_id>/test-connection/",
            wrap(plugin_pages.ConnectionTestView.as_view(scope="plugin")),
            name="plugins_core_plugin_test",
        ),
        path(
            "<int:plugin_id>/state/",
            wrap(plugin_pages.PluginStateView.as_view(admin_site=site)),
            name="plugins_core_plugin_state",
        ),
        path(
            "install/",
            wrap(wizard.StartView.as_view(admin_site=site)),
            name="plugins_core_install_start",
        ),
        path(
            "install/preview/",
            wrap(wizard.PreviewView.as_view(admin_site=site)),
            name="plugins_core_install_preview",
        ),
        path(
            "install/<str:pid>/cancel/",
            wrap(wizard.CancelView.as_view(admin_site=site)),
            name="plugins_core_install_cancel",
        ),
        path(
            "install/<str:pid>/done/",
            wrap(wizard.DoneView.as_view(admin_site=site)),
            name="plugins_core_install_done",
        ),
        path(
            "install/<str:pid>/<slug:step>/",
            wrap(wizard.StepView.as_view(admin_site=site)),
            name="plugins_core_install_step",
        ),
    ]
