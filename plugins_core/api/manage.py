"""Management API: services, write-only credentials, installed plugins and connection tests.

Everything the admin does to a service or a plugin, for scripts (Terraform providers, CLIs):
each view parses, authorizes (``imbi.core.access``: org admins), calls a service function
(``plugins_core.provisioning.services``, ``plugins_core.provisioning.lifecycle``,
``plugins_core.serving.health``) and renders.
Reads are open to members of the organization; another organization's objects answer 404.
Credential values are never returned: reads list which names are set.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import extend_schema
from imbi_plugin_sdk.errors import InvalidInput
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from imbi.core.access import Grant, is_operator, load_organization
from imbi.core.models import Organization, Project
from plugins_core import registry
from plugins_core.isolation import host
from plugins_core.isolation.modes import effective_mode
from plugins_core.models import ConnectionCheck, Plugin, ThirdPartyService
from plugins_core.provisioning import services as service_fns
from plugins_core.provisioning.lifecycle import set_plugin_enabled
from plugins_core.serving import health
from plugins_core.serving.resolution import manifest_for, permissions_state
from plugins_core.serving.tabs import Forbidden

from . import serializers as s


def _parse(serializer_class: Any, data: Any, **kwargs: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _require_manage(request: Request, organization: Organization) -> None:
    if not is_operator(request.user, organization):
        raise Forbidden(
            "managing services, credentials and plugins is an operator action "
            "(active staff with the admin role)"
        )


def _service(request: Request, org: str, slug: str) -> tuple[ThirdPartyService, Grant]:
    organization, grant = load_organization(request.user, org)
    service = (
        ThirdPartyService.objects.select_related("organization")
        .filter(organization=organization, slug=slug)
        .first()
    )
    if service is None:
        raise Http404
    return service, grant


def _plugin(request: Request, org: str, slug: str) -> tuple[Plugin, Grant]:
    organization, grant = load_organization(request.user, org)
    plugin = (
        health.with_health(Plugin.objects.filter(organization=organization, slug=slug))
        .select_related("organization")
        .first()
    )
    if plugin is None:
        raise Http404
    return plugin, grant


def service_out(service: ThirdPartyService) -> dict[str, Any]:
    return {
        "slug": service.slug,
        "name": service.name,
        "vendor": service.vendor,
        "category": service.category,
        "identity": service.identity,
        "settings": dict(service.settings),
        "managed_by_manifest": service.managed_by_manifest,
        "template_source": service.template_source,
        "plugins": sorted(p.slug for p in service.plugins.all()),
        "credentials": service_fns.credentials_status(service),
        "created_at": service.created_at,
        "updated_at": service.updated_at,
    }


def plugin_out(plugin: Plugin, snapshot: registry.Snapshot | None = None) -> dict[str, Any]:
    snapshot = snapshot or registry.current()
    found = health.badge(plugin, snapshot)
    runs = effective_mode(plugin.execution_mode, snapshot.get(plugin.handler))
    circuit = host.breaker().state(host.plugin_breaker_key(plugin.pk)).state
    return {
        **s.installed_out(plugin, found.status, found.reason, runs=runs, circuit=circuit),
        "options": service_fns.plugin_options(plugin),
        "health": found.to_dict(),
        "permissions": permissions_state(plugin, manifest_for(plugin, snapshot)),
    }


def check_out(check: ConnectionCheck) -> dict[str, Any]:
    return {
        "plugin": check.plugin.slug,
        "ok": check.status == ConnectionCheck.Status.OK,
        "status": check.status,
        "message": check.message,
        "tested_at": check.tested_at,
        "duration_ms": check.duration_ms,
        "trigger": check.trigger,
    }


class ServicesView(APIView):
    @extend_schema(responses={200: s.ServiceOut(many=True)}, operation_id="services_list")
    def get(self, request: Request, org: str) -> Response:
        organization, _ = load_organization(request.user, org)
        rows = (
            ThirdPartyService.objects.filter(organization=organization)
            .defer("icon")
            .prefetch_related("plugins")
            .order_by("slug")
        )
        return Response([service_out(row) for row in rows])

    @extend_schema(
        request=s.ServiceIn, responses={201: s.ServiceOut}, operation_id="services_create"
    )
    def post(self, request: Request, org: str) -> Response:
        body = _parse(s.ServiceIn, request.data)
        organization, _ = load_organization(request.user, org)
        _require_manage(request, organization)
        service = service_fns.create_service(organization, body, request.user)
        return Response(service_out(service), status=201)


class ServiceView(APIView):
    @extend_schema(responses={200: s.ServiceOut}, operation_id="service_get")
    def get(self, request: Request, org: str, slug: str) -> Response:
        service, _ = _service(request, org, slug)
        return Response(service_out(service))

    @extend_schema(
        request=s.ServicePatch, responses={200: s.ServiceOut}, operation_id="service_update"
    )
    def patch(self, request: Request, org: str, slug: str) -> Response:
        body = _parse(s.ServicePatch, request.data)
        service, _ = _service(request, org, slug)
        _require_manage(request, service.organization)
        return Response(service_out(service_fns.update_service(service, body, request.user)))

    @extend_schema(responses={204: None}, operation_id="service_delete")
    def delete(self, request: Request, org: str, slug: str) -> Response:
        service, _ = _service(request, org, slug)
        _require_manage(request, service.organization)
        service_fns.delete_service(service, request.user)
        return Response(status=204)


class CredentialsView(APIView):
    """Write-only credentials of a service. ``GET`` says which names are set."""

    @extend_schema(responses={200: s.CredentialsOut}, operation_id="service_credentials_get")
    def get(self, request: Request, org: str, slug: str) -> Response:
        service, _ = _service(request, org, slug)
        return Response(service_fns.credentials_status(service))

    def _change(self, request: Request, org: str, slug: str, *, replace: bool) -> Response:
        body = _parse(s.CredentialsIn, request.data)
        service, _ = _service(request, org, slug)
        _require_manage(request, service.organization)
        changed = service_fns.change_credentials(
            service, body["credentials"], request.user, replace=replace
        )
        return Response({**service_fns.credentials_status(service), "changed": changed})

    @extend_schema(
        request=s.CredentialsIn,
        responses={200: s.CredentialsOut},
        operation_id="service_credentials_replace",
        description="Replace every stored credential with the ones given.",
    )
    def put(self, request: Request, org: str, slug: str) -> Response:
        return self._change(request, org, slug, replace=True)

    @extend_schema(
        request=s.CredentialsIn,
        responses={200: s.CredentialsOut},
        operation_id="service_credentials_set",
        description="Set the credentials given; a null value clears that one; others stay.",
    )
    def patch(self, request: Request, org: str, slug: str) -> Response:
        return self._change(request, org, slug, replace=False)

    @extend_schema(responses={204: None}, operation_id="service_credentials_clear")
    def delete(self, request: Request, org: str, slug: str) -> Response:
        service, _ = _service(request, org, slug)
        _require_manage(request, service.organization)
        service_fns.change_credentials(service, {}, request.user, replace=True)
        return Response(status=204)


class PluginView(APIView):
    @extend_schema(responses={200: s.PluginOut}, operation_id="plugin_get")
    def get(self, request: Request, org: str, slug: str) -> Response:
        plugin, _ = _plugin(request, org, slug)
        return Response(plugin_out(plugin))

    @extend_schema(
        request=s.PluginPatch,
        responses={200: s.PluginOut},
        operation_id="plugin_update",
        description="Enable or disable the plugin and/or replace its options (secret "
        "options come back masked; sending the mask keeps the stored value).",
    )
    def patch(self, request: Request, org: str, slug: str) -> Response:
        body = _parse(s.PluginPatch, request.data)
        plugin, _ = _plugin(request, org, slug)
        _require_manage(request, plugin.organization)
        if "options" in body:
            service_fns.update_plugin_options(plugin, body["options"], request.user)
        if "enabled" in body:
            set_plugin_enabled(plugin, body["enabled"], request.user)
        plugin, _ = _plugin(request, org, slug)
        return Response(plugin_out(plugin))


class ConnectionTestView(APIView):
    @extend_schema(responses={200: s.ConnectionCheckOut}, operation_id="plugin_connection_get")
    def get(self, request: Request, org: str, slug: str) -> Response:
        """The last connection test (404 ``not_tested`` when there was none)."""
        plugin, _ = _plugin(request, org, slug)
        check = ConnectionCheck.objects.filter(plugin=plugin).select_related("plugin").first()
        if check is None:
            raise NotTested(f"plugin '{plugin.slug}' has not been tested since its last change")
        return Response(check_out(check))

    @extend_schema(
        request=s.ConnectionTestIn,
        responses={200: s.ConnectionCheckOut},
        operation_id="plugin_connection_test",
    )
    def post(self, request: Request, org: str, slug: str) -> Response:
        """Run the plugin's connection test now with its stored options and credentials."""
        body = _parse(s.ConnectionTestIn, request.data)
        plugin, _ = _plugin(request, org, slug)
        _require_manage(request, plugin.organization)
        project = None
        if body.get("project"):
            project = (
                Project.objects.select_related("organization", "project_type")
                .filter(organization_id=plugin.organization_id, pk=body["project"])
                .first()
            )
            if project is None:
                raise InvalidInput(
                    "no such project in this organization", fields={"project": "not found"}
                )
        check = health.check_connection(
            plugin, trigger=ConnectionCheck.Trigger.API, actor=request.user, project=project
        )
        return Response(check_out(check))


class NotTested(Forbidden):
    code, http_status = "not_tested", 404
