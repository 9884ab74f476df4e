"""Tab API views. Each one parses, authorizes, calls a service function, and renders.

Authorization: ``load_project``/``load_organization`` answer 404 for anything outside the
caller's organizations. Errors are problem+json (see ``imbi.api.problems``).
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from imbi_plugin_sdk import ConfigKey, ConfigValue, ConfigWrite, DataType
from imbi_plugin_sdk.errors import InvalidInput
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from imbi.core.access import (
    can_bind_project_grant,
    is_operator,
    load_organization,
    load_project,
)
from imbi.core.models import ProjectType
from plugins_core import registry
from plugins_core.distributions import integrity
from plugins_core.isolation import capabilities
from plugins_core.models import Plugin, ProjectPlugin, ProjectTypePlugin
from plugins_core.provisioning import bindings as binding_service
from plugins_core.provisioning.install import InstallError, install_from_template
from plugins_core.provisioning.services import credentials_status
from plugins_core.serving import health, tabs
from plugins_core.serving.resolution import Resolved
from plugins_core.supply import install as index_install
from plugins_core.supply import trust

from . import manage
from . import serializers as s

KEY_PARAM = OpenApiParameter(
    "key",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="Configuration key (may contain '/').",
)


class PolicyRefused(Exception):
    """The organization's publisher policy refuses the entry point (issue 20, case 9): a
    field error on ``entry_point`` with its own code."""

    code = "publisher_not_verified"
    http_status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fields = {"entry_point": detail}


# Says how a write's cache invalidation went: "immediate", or "deferred" (Redis was down, the
# write and its audit event are stored and the cache was retired through the database).
CACHE_HEADER = "Imbi-Cache-Invalidation"
CACHE_HEADER_PARAM = OpenApiParameter(
    CACHE_HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=True,
    enum=["immediate", "deferred"],
    description=(
        "How cached results were retired after the write: 'deferred' when Redis was "
        "unreachable (the write and its audit event are stored; the cache was retired "
        "through the database)."
    ),
)


def _parse(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:  # type: ignore[type-arg]
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _source(resolved: Resolved) -> dict[str, str]:
    return {"slug": resolved.plugin.slug, "name": resolved.plugin.name or resolved.plugin.slug}


def _key(key: ConfigKey) -> dict[str, Any]:
    return {
        "key": key.key,
        "data_type": key.data_type.value,
        "secret": key.secret,
        "last_modified": key.last_modified,
    }


def _value(value: ConfigValue) -> dict[str, Any]:
    masked = value.secret and value.value is None
    return {**_key(value), "value": value.value, "masked": masked}  # type: ignore[arg-type]


class ProjectTabsView(APIView):
    @extend_schema(responses={200: s.TabsOut}, operation_id="project_tabs")
    def get(self, request: Request, org: str, project_id: int) -> Response:
        project, _ = load_project(request.user, org, project_id)
        result = [
            {
                "tab": tab,
                "sources": [
                    {
                        "slug": src.binding.plugin.slug,
                        "name": src.binding.plugin.name or src.binding.plugin.slug,
                        "scope": src.binding.scope,
                        "default": src.binding.default,
                        "selected": src.selected,
                        "status": src.status,
                        "reason": src.reason,
                        "tested_at": src.tested_at,
                    }
                    for src in sources
                ],
            }
            for tab, sources in tabs.project_tabs(project).items()
        ]
        return Response({"tabs": result})


class ConfigurationKeysView(APIView):
    @extend_schema(
        parameters=[s.SourceQuery],
        responses={200: s.KeysOut},
        operation_id="configuration_keys",
    )
    def get(self, request: Request, org: str, project_id: int) -> Response:
        query = _parse(s.SourceQuery, request.query_params)
        project, grant = load_project(request.user, org, project_id)
        resolved, keys = tabs.list_keys(project, grant, query.get("source"))
        return Response({"source": _source(resolved), "keys": [_key(k) for k in keys]})


class ConfigurationValuesView(APIView):
    @extend_schema(
        parameters=[s.ValuesQuery],
        responses={200: s.ValuesOut},
        operation_id="configuration_values",
    )
    def get(self, request: Request, org: str, project_id: int) -> Response:
        query = _parse(s.ValuesQuery, request.query_params)
        keys = [k for k in query["keys"].split(",") if k] if query.get("keys") else None
        project, grant = load_project(request.user, org, project_id)
        resolved, values = tabs.get_values(
            project, grant, request.user, query.get("source"), keys, reveal=query["reveal"]
        )
        return Response({"source": _source(resolved), "values": [_value(v) for v in values]})


class ConfigurationKeyView(APIView):
    @extend_schema(
        parameters=[s.SourceQuery, KEY_PARAM, CACHE_HEADER_PARAM],
        request=s.ConfigWriteIn,
        responses={200: s.KeyOut},
        operation_id="configuration_set",
    )
    def put(self, request: Request, org: str, project_id: int, key: str) -> Response:
        query = _parse(s.SourceQuery, request.query_params)
        body = _parse(s.ConfigWriteIn, request.data)
        try:
            write = ConfigWrite(
                data_type=DataType(body["data_type"]), value=body["value"], secret=body["secret"]
            )
        except InvalidInput as exc:
            raise InvalidInput(exc.detail, fields={"value": exc.detail}) from None
        project, grant = load_project(request.user, org, project_id)
        resolved, result, invalidation = tabs.set_value(
            project, grant, request.user, query.get("source"), key, write
        )
        return Response(
            {"source": _source(resolved), "key": _key(result), "cache_invalidation": invalidation},
            headers={CACHE_HEADER: invalidation},
        )

    @extend_schema(
        parameters=[s.SourceQuery, KEY_PARAM, CACHE_HEADER_PARAM],
        responses={204: None},
        operation_id="configuration_delete",
    )
    def delete(self, request: Request, org: str, project_id: int, key: str) -> Response:
        query = _parse(s.SourceQuery, request.query_params)
        project, grant = load_project(request.user, org, project_id)
        _, invalidation = tabs.delete_key(project, grant, request.user, query.get("source"), key)
        return Response(status=204, headers={CACHE_HEADER: invalidation})


class LogsView(APIView):
    @extend_schema(parameters=[s.LogsQuery], responses={200: s.LogsOut}, operation_id="logs_search")
    def get(self, request: Request, org: str, project_id: int) -> Response:
        serializer = s.LogsQuery(
            data={
                **{k: v for k, v in request.query_params.items() if k not in {"filter", "level"}},
                "filter": request.query_params.getlist("filter"),
                "level": request.query_params.getlist("level"),
            }
        )
        serializer.is_valid(raise_exception=True)
        query = serializer.to_query()
        project, grant = load_project(request.user, org, project_id)
        resolved, result = tabs.search_logs(
            project, grant, serializer.validated_data.get("source"), query
        )
        return Response(
            {
                "source": _source(resolved),
                "start": query.start,
                "end": query.end,
                "entries": [
                    {
                        "timestamp": e.timestamp,
                        "level": e.level.value if e.level else None,
                        "message": e.message,
                        "fields": dict(e.fields),
                    }
                    for e in result.entries
                ],
                "next_cursor": result.next_cursor,
                "warnings": list(result.warnings),
            }
        )


def _logs_query(request: Request, serializer_class: Any) -> Any:
    serializer = serializer_class(
        data={
            **{k: v for k, v in request.query_params.items() if k not in {"filter", "level"}},
            "filter": request.query_params.getlist("filter"),
            "level": request.query_params.getlist("level"),
        }
    )
    serializer.is_valid(raise_exception=True)
    return serializer


class LogsHistogramView(APIView):
    @extend_schema(
        parameters=[s.HistogramQuery],
        responses={200: s.HistogramOut},
        operation_id="logs_histogram",
    )
    def get(self, request: Request, org: str, project_id: int) -> Response:
        """Entry counts over time for the same query as the logs search (501
        ``not_supported`` when the source has no histogram)."""
        serializer = _logs_query(request, s.HistogramQuery)
        query = serializer.to_query()
        project, grant = load_project(request.user, org, project_id)
        resolved, histogram = tabs.logs_histogram(
            project,
            grant,
            serializer.validated_data.get("source"),
            query,
            serializer.validated_data["buckets"],
        )
        buckets = [b.to_dict() for b in histogram.buckets]
        return Response(
            {
                "source": _source(resolved),
                "start": query.start,
                "end": query.end,
                "total": sum(b.count for b in histogram.buckets),
                "buckets": buckets,
            }
        )


# --- bindings --------------------------------------------------------------------------


class ProjectBindingsView(APIView):
    @extend_schema(responses={200: s.BindingOut(many=True)}, operation_id="project_bindings_list")
    def get(self, request: Request, org: str, project_id: int) -> Response:
        project, _ = load_project(request.user, org, project_id)
        rows = ProjectPlugin.objects.filter(project=project).select_related("plugin")
        return Response([s.binding_out(row) for row in rows.order_by("tab", "plugin__slug")])

    @extend_schema(
        request=s.BindingIn,
        responses={201: s.BindingOut},
        operation_id="project_bindings_create",
    )
    def post(self, request: Request, org: str, project_id: int) -> Response:
        body = _parse(s.BindingIn, request.data)
        project, grant = load_project(request.user, org, project_id)
        if not can_bind_project_grant(request.user, grant, project):
            raise tabs.Forbidden("binding plugins needs an org admin or an owner of this project")
        binding = binding_service.create_project_binding(project, body, request.user)
        return Response(s.binding_out(binding), status=201)


class ProjectBindingView(APIView):
    def _load(
        self, request: Request, org: str, project_id: int, binding_id: int
    ) -> tuple[ProjectPlugin, Any]:
        project, grant = load_project(request.user, org, project_id)
        binding = (
            ProjectPlugin.objects.select_related("plugin", "project")
            .filter(project=project, pk=binding_id)
            .first()
        )
        if binding is None:
            raise Http404
        return binding, grant

    def _check(self, request: Request, binding: ProjectPlugin, grant: Any) -> None:
        if not can_bind_project_grant(request.user, grant, binding.project):
            raise tabs.Forbidden("binding plugins needs an org admin or an owner of this project")

    @extend_schema(responses={200: s.BindingOut}, operation_id="project_binding_get")
    def get(self, request: Request, org: str, project_id: int, binding_id: int) -> Response:
        binding, _ = self._load(request, org, project_id, binding_id)
        return Response(s.binding_out(binding))

    @extend_schema(
        request=s.BindingPatch,
        responses={200: s.BindingOut},
        operation_id="project_binding_update",
    )
    def patch(self, request: Request, org: str, project_id: int, binding_id: int) -> Response:
        body = _parse(s.BindingPatch, request.data)
        binding, grant = self._load(request, org, project_id, binding_id)
        self._check(request, binding, grant)
        return Response(s.binding_out(binding_service.update_binding(binding, body, request.user)))

    @extend_schema(responses={204: None}, operation_id="project_binding_delete")
    def delete(self, request: Request, org: str, project_id: int, binding_id: int) -> Response:
        binding, grant = self._load(request, org, project_id, binding_id)
        self._check(request, binding, grant)
        binding_service.delete_binding(binding, request.user)
        return Response(status=204)


def _project_type(request: Request, org: str, type_slug: str) -> tuple[ProjectType, Any]:
    organization, grant = load_organization(request.user, org)
    project_type = ProjectType.objects.filter(organization=organization, slug=type_slug).first()
    if project_type is None:
        raise Http404
    return project_type, grant


def _require_admin(grant: Any) -> None:
    if not grant.at_least("admin"):
        raise tabs.Forbidden("project-type bindings need the admin role")


class TypeBindingsView(APIView):
    @extend_schema(responses={200: s.BindingOut(many=True)}, operation_id="type_bindings_list")
    def get(self, request: Request, org: str, type_slug: str) -> Response:
        project_type, _ = _project_type(request, org, type_slug)
        rows = ProjectTypePlugin.objects.filter(project_type=project_type).select_related("plugin")
        return Response([s.binding_out(row) for row in rows.order_by("tab", "plugin__slug")])

    @extend_schema(
        request=s.BindingIn,
        responses={201: s.BindingOut},
        operation_id="type_bindings_create",
    )
    def post(self, request: Request, org: str, type_slug: str) -> Response:
        body = _parse(s.BindingIn, request.data)
        project_type, grant = _project_type(request, org, type_slug)
        _require_admin(grant)
        binding = binding_service.create_type_binding(project_type, body, request.user)
        return Response(s.binding_out(binding), status=201)


class TypeBindingView(APIView):
    def _load(
        self, request: Request, org: str, type_slug: str, binding_id: int
    ) -> tuple[ProjectTypePlugin, Any]:
        project_type, grant = _project_type(request, org, type_slug)
        binding = (
            ProjectTypePlugin.objects.select_related("plugin")
            .filter(project_type=project_type, pk=binding_id)
            .first()
        )
        if binding is None:
            raise Http404
        return binding, grant

    @extend_schema(responses={200: s.BindingOut}, operation_id="type_binding_get")
    def get(self, request: Request, org: str, type_slug: str, binding_id: int) -> Response:
        binding, _ = self._load(request, org, type_slug, binding_id)
        return Response(s.binding_out(binding))

    @extend_schema(
        request=s.BindingPatch,
        responses={200: s.BindingOut},
        operation_id="type_binding_update",
    )
    def patch(self, request: Request, org: str, type_slug: str, binding_id: int) -> Response:
        body = _parse(s.BindingPatch, request.data)
        binding, grant = self._load(request, org, type_slug, binding_id)
        _require_admin(grant)
        return Response(s.binding_out(binding_service.update_binding(binding, body, request.user)))

    @extend_schema(responses={204: None}, operation_id="type_binding_delete")
    def delete(self, request: Request, org: str, type_slug: str, binding_id: int) -> Response:
        binding, grant = self._load(request, org, type_slug, binding_id)
        _require_admin(grant)
        binding_service.delete_binding(binding, request.user)
        return Response(status=204)


# --- plugins ------------------------------------------------------------------------------


def entry_out(entry: registry.Entry, badges: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "name": entry.name,
        "slug": entry.slug,
        "distribution": entry.distribution,
        "version": entry.version,
        "status": capabilities.status_value(entry),
        "reason": capabilities.entry_refusal(entry) or entry.reason,
        "plugin_type": entry.manifest.plugin_type.value if entry.manifest else None,
        "api_version": entry.manifest.api_version if entry.manifest else None,
        "legacy_sdk": entry.legacy_sdk,
        "isolated_only": entry.isolated,
        "badge": trust.badge_of(entry.distribution, badges or {}),
    }


class RegistryView(APIView):
    @extend_schema(responses={200: s.RegistryOut}, operation_id="plugin_registry")
    def get(self, request: Request) -> Response:
        """The plugin registry: ``{generation, loading, entries}``.

        ``generation`` is the registry generation this node serves (it grows with every
        runtime install, upgrade and removal), ``loading`` how many entry points are still being
        imported in sandboxed runners (0 once settled), ``entries`` every discovered entry point
        with its status."""
        snapshot = registry.current()
        badges = trust.installed_badges()
        return Response(
            {
                "generation": snapshot.generation,
                "loading": len(snapshot.loading()),
                "entries": [entry_out(e, badges) for e in snapshot.entries.values()],
            }
        )


class InstalledPluginsView(APIView):
    @extend_schema(responses={200: s.PluginOut(many=True)}, operation_id="installed_plugins")
    def get(self, request: Request, org: str) -> Response:
        organization, _ = load_organization(request.user, org)
        snapshot = registry.current()
        rows = health.with_health(Plugin.objects.filter(organization=organization))
        return Response([manage.plugin_out(plugin, snapshot) for plugin in rows.order_by("slug")])


class InstallTemplateView(APIView):
    @extend_schema(
        request=s.InstallIn,
        responses={201: s.InstallOut, 200: s.InstallOut},
        operation_id="install_from_template",
    )
    def post(self, request: Request, org: str) -> Response:
        """One-click install from a manifest's service template (operators: staff who are
        admins of the organization, as in the admin's install wizard)."""
        body = _parse(s.InstallIn, request.data)
        organization, _ = load_organization(request.user, org)
        if not is_operator(request.user, organization):
            raise tabs.Forbidden(
                "installing plugins needs an operator: a staff user with the admin role"
            )
        try:
            result = install_from_template(organization, body["entry_point"], actor=request.user)
        except InstallError as exc:
            if exc.code == "publisher_not_verified":
                raise PolicyRefused(exc.message) from None
            field = "settings" if exc.code == "host_not_allowed" else "entry_point"
            raise InvalidInput(exc.message, fields={field: exc.message}) from None
        # only what is still missing: a credential already set is not asked for again
        needed = credentials_status(result.service)["missing"]
        created = result.created_service or bool(result.created_plugins)
        return Response(
            {
                "service": result.service.slug,
                "created_service": result.created_service,
                "plugins": [p.slug for p in result.plugins],
                "created_plugins": list(result.created_plugins),
                "credentials_needed": needed,
            },
            status=201 if created else 200,
        )


# --- the signed plugin index ----------------------------------------------------------------


def _require_superuser(request: Request) -> None:
    if not getattr(request.user, "is_superuser", False):
        from rest_framework.exceptions import PermissionDenied

        raise PermissionDenied("Only a platform administrator may install plugin distributions.")


def _require_staff(request: Request) -> None:
    if not getattr(request.user, "is_staff", False):
        from rest_framework.exceptions import PermissionDenied

        raise PermissionDenied("Only platform staff may see this.")


class IndexInstallView(APIView):
    @extend_schema(
        request=s.IndexInstallIn,
        responses={201: s.IndexInstallOut},
        operation_id="install_from_index",
    )
    def post(self, request: Request) -> Response:
        """Verify NAME[==VERSION] from the signed indexes and install it (superusers).

        Every refusal is problem+json with its own code (``index_rollback``,
        ``artifact_hash_mismatch``, ``publisher_not_verified``, ...) and installs nothing."""
        _require_superuser(request)
        body = _parse(s.IndexInstallIn, request.data)
        organization = None
        if body.get("org"):
            organization, _ = load_organization(request.user, body["org"])
        result = index_install.install_from_index(
            body["requirement"],
            organization=organization,
            actor=request.user,
            allow_downgrade=bool(body.get("allow_downgrade")),
            transfer_publisher=bool(body.get("transfer_publisher")),
        )
        artifact = result.artifact
        return Response(
            {
                "distribution": artifact.name,
                "version": artifact.version,
                "previous_version": result.previous_version,
                "sha256": artifact.sha256,
                "size": artifact.size,
                "index": artifact.index,
                "index_version": artifact.index_version,
                "publisher": artifact.certificate.subject,
                "badge": artifact.badge,
                "generation": result.row.generation if result.row else None,
                "artifacts": list(result.row.artifacts) if result.row else [],
            },
            status=201,
        )


class AvailableView(APIView):
    @extend_schema(
        responses={200: s.AvailablePluginOut(many=True)}, operation_id="available_plugins"
    )
    def get(self, request: Request) -> Response:
        """What the followed indexes offer (last verified documents), with badges."""
        _require_staff(request)
        return Response([offer.to_dict() for offer in index_install.available()])


class IntegrityView(APIView):
    @extend_schema(responses={200: s.IntegrityOut(many=True)}, operation_id="plugin_integrity")
    def get(self, request: Request) -> Response:
        """Every installed plugin distribution checked against its signed file manifest."""
        _require_staff(request)
        return Response(
            [
                {
                    "distribution": r.distribution,
                    "version": r.version,
                    "status": r.status,
                    "detail": r.detail,
                    "ok": r.ok,
                }
                for r in integrity.verify_installed()
            ]
        )
