"""The operator's plugin pages outside the admin's model pages: the registry, enabling and
disabling a plugin (with a confirmation page saying what it affects), connection tests, and
the catalog (``catalog``'s cards).

Routed by ``plugins_core.pages.admin.site`` (registry, state switch, connection tests) and
``plugins_core.urls`` (catalog). Views stay thin: parse, authorize, call ``provisioning`` or
``serving``, render.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from packaging.utils import canonicalize_name as canonical

from imbi.core import access
from imbi.core.models import Membership
from plugins_core import registry
from plugins_core.isolation import capabilities
from plugins_core.models import (
    ConnectionCheck,
    Plugin,
    binding_impact,
)
from plugins_core.pages import catalog
from plugins_core.pages.views import confirmation, confirmed, login
from plugins_core.provisioning.lifecycle import set_plugin_enabled
from plugins_core.serving import health
from plugins_core.supply import install as index_install
from plugins_core.supply import trust


def can_admin_plugin(user: Any, plugin: Plugin) -> bool:
    return access.is_operator(user, plugin.organization)


@dataclass(frozen=True, slots=True)
class RegistryRow:
    entry: registry.Entry
    installed: list[Plugin]
    badge: str = "unsigned"

    @property
    def label(self) -> str:
        return capabilities.status_label(self.entry)

    @property
    def manifest(self) -> Any:
        return self.entry.manifest


class RegistryView(View):
    """Admin: every discovered entry point, and the installed plugins you administer."""

    admin_site: AdminSite | None = None

    def get(self, request: HttpRequest) -> HttpResponse:
        if not getattr(request.user, "is_staff", False):
            raise PermissionDenied
        snapshot = registry.current()
        plugins = Plugin.objects.select_related("organization", "service").order_by(
            "organization__slug", "slug"
        )
        if not request.user.is_superuser:
            plugins = plugins.filter(
                organization__in=access.administered_organizations(request.user)
            )
        by_handler: dict[str, list[Plugin]] = {}
        for plugin in plugins:
            by_handler.setdefault(plugin.handler, []).append(plugin)
        badges = trust.installed_badges()
        rows = [
            RegistryRow(entry, by_handler.pop(name, []), trust.badge_of(entry.distribution, badges))
            for name, entry in sorted(snapshot.entries.items())
        ]
        orphans = [p for group in by_handler.values() for p in group]
        context = self.admin_site.each_context(request) if self.admin_site else {}
        return render(
            request,
            "admin/plugins_core/registry.html",
            {
                **context,
                "title": "Plugin registry",
                "rows": rows,
                "orphans": orphans,
                "snapshot": snapshot,
                "host_api": registry.HOST_API_VERSION,
                "can_install": access.administers_any(request.user),
            },
        )


class PluginStateView(View):
    """Admin: POST ``enabled=1|0`` to enable or disable one installed plugin.

    Disabling turns the plugin off for every project that uses it, so it is confirmed first:
    GET ``?enabled=0`` (and a POST without ``confirm=yes``) shows how many projects and
    bindings it reaches; the POST with ``confirm=yes`` acts. Enabling acts at once. A plugin
    of an organization the caller does not administer is a 404, like a missing one.
    """

    admin_site: AdminSite | None = None

    def _plugin(self, request: HttpRequest, plugin_id: int) -> Plugin:
        if not access.administers_any(request.user):
            raise PermissionDenied
        plugin = (
            Plugin.objects.select_related("organization", "service")
            .filter(pk=plugin_id, organization__in=access.administered_organizations(request.user))
            .first()
            if 0 < plugin_id < 2**63
            else None
        )
        if plugin is None or not can_admin_plugin(request.user, plugin):
            raise Http404
        return plugin

    def _next(self, request: HttpRequest) -> str:
        target = request.POST.get("next", "") or request.GET.get("next", "")
        if not url_has_allowed_host_and_scheme(
            target, {request.get_host()}, require_https=request.is_secure()
        ):
            target = reverse("admin:plugins_core_registry")
        return target

    def get(self, request: HttpRequest, plugin_id: int) -> HttpResponse:
        plugin = self._plugin(request, plugin_id)
        if not plugin.enabled:
            return HttpResponseRedirect(self._next(request))
        return self._confirm(request, plugin)

    def _confirm(self, request: HttpRequest, plugin: Plugin) -> HttpResponse:
        return confirmation(
            request,
            "admin/plugins_core/confirm.html",
            {
                "title": f"Disable {plugin.slug}",
                "question": f"Disable the plugin {plugin.slug} in {plugin.organization.name} "
                f"(service {plugin.service.name})?",
                "consequence": "Its tabs stop answering for every project below until it is "
                "enabled again; its bindings, options and credentials are kept.",
                "impact": binding_impact(Plugin.objects.filter(pk=plugin.pk)),
                "action": request.path,
                "hidden": [("enabled", "0"), ("next", self._next(request))],
                "confirm_label": f"Yes, disable {plugin.slug}",
                "cancel_url": self._next(request),
            },
            self.admin_site,
        )

    def post(self, request: HttpRequest, plugin_id: int) -> HttpResponse:
        plugin = self._plugin(request, plugin_id)
        enabled = request.POST.get("enabled") == "1"
        if not enabled and plugin.enabled and not confirmed(request):
            return self._confirm(request, plugin)
        if set_plugin_enabled(plugin, enabled, request.user):
            messages.success(
                request,
                f"{plugin.slug} in {plugin.organization.slug} is now "
                f"{'enabled' if enabled else 'disabled'}.",
            )
        return HttpResponseRedirect(self._next(request))


def _back(request: HttpRequest, fallback: str) -> HttpResponseRedirect:
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, {request.get_host()}, require_https=request.is_secure()
    ):
        target = fallback
    return HttpResponseRedirect(target)


class ConnectionTestView(View):
    """Admin: POST to run the connection test of one plugin, or of every plugin of a service
    (``scope`` is ``plugin`` or ``service``); the result is recorded and shown as a message."""

    scope = "plugin"

    def post(self, request: HttpRequest, object_id: int) -> HttpResponse:
        if self.scope == "service":
            plugins = list(
                Plugin.objects.select_related("organization", "service").filter(
                    service_id=object_id
                )
            )
            fallback = reverse("admin:plugins_core_thirdpartyservice_change", args=[object_id])
        else:
            plugins = list(
                Plugin.objects.select_related("organization", "service").filter(pk=object_id)
            )
            fallback = reverse("admin:plugins_core_plugin_change", args=[object_id])
        if self.scope == "plugin" and not plugins:
            raise Http404
        if not plugins:
            messages.warning(request, "This service has no plugins to test.")
        for plugin in plugins:
            if not can_admin_plugin(request.user, plugin):
                raise PermissionDenied
        for plugin in plugins:
            check = health.check_connection(
                plugin, trigger=ConnectionCheck.Trigger.ADMIN, actor=request.user
            )
            text = f"{plugin.slug}: connection {check.status} ({check.duration_ms} ms)"
            if check.message:
                text += f": {check.message}"
            (messages.success if check.status == "ok" else messages.error)(request, text)
        return _back(request, fallback)


# --------------------------------------------------------------------------- catalog


def _viewer_org_ids(user: Any) -> list[int] | None:
    if getattr(user, "is_superuser", False):
        return None
    return list(
        Membership.objects.filter(user_id=user.pk).values_list("organization_id", flat=True)
    )


@login
class CatalogView(View):
    """The plugin catalog as a card grid: logo, type filter, search, installed marker."""

    def get(self, request: HttpRequest) -> HttpResponse:
        items = catalog.cards(_viewer_org_ids(request.user))
        offers = index_install.available() if access.is_superuser(request.user) else []
        updates = {canonical(o.name): o.installable for o in offers if o.update_available}
        return render(
            request,
            "plugins_core/catalog.html",
            {
                "offers": offers,
                "updates": updates,
                "cards": [
                    dataclasses.replace(
                        c, update=updates.get(canonical(c.entry.distribution or "-"), "")
                    )
                    for c in items
                ],
                "types": catalog.offered_types(items),
                "can_install": access.administers_any(request.user),
            },
        )


@login
class CatalogDetailView(View):
    """One plugin's details: description, permissions, options, credentials, docs, version."""

    def get(self, request: HttpRequest, entry_point: str) -> HttpResponse:
        found = [c for c in catalog.cards(_viewer_org_ids(request.user)) if c.name == entry_point]
        if not found:
            raise Http404
        return render(
            request,
            "plugins_core/catalog_detail.html",
            {
                "card": found[0],
                "can_install": access.administers_any(request.user),
                "has_readme": bool(catalog.readme(found[0])),
            },
        )


@login
class CatalogReadmeView(View):
    """A plugin distribution's own README (its package's long description), served here so a
    plugin with no homepage (the built-in local plugins) still has documentation."""

    def get(self, request: HttpRequest, entry_point: str) -> HttpResponse:
        found = [c for c in catalog.cards(_viewer_org_ids(request.user)) if c.name == entry_point]
        text = catalog.readme(found[0]) if found else ""
        if not text:
            raise Http404
        return render(
            request, "plugins_core/catalog_readme.html", {"card": found[0], "readme": text}
        )


__all__ = [
    "CatalogDetailView",
    "CatalogReadmeView",
    "CatalogView",
    "ConnectionTestView",
    "PluginStateView",
    "RegistryView",
]
