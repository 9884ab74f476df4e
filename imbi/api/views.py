"""Platform endpoints: the caller's identity and organizations, projects, project types and
the audit trail (read-only; the admin edits these rows)."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from imbi.core import audit
from imbi.core.access import is_operator, load_organization
from imbi.core.models import Membership, Organization, Project, ProjectType, Role

from . import serializers as s
from .problems import Problem


class WhoAmIView(APIView):
    @extend_schema(
        responses=inline_serializer(
            "WhoAmI",
            {
                "username": serializers.CharField(),
                "organizations": serializers.DictField(child=serializers.CharField()),
            },
        )
    )
    def get(self, request: Request) -> Response:
        roles = dict(
            Membership.objects.filter(user_id=int(request.user.pk or 0)).values_list(
                "organization__slug", "role"
            )
        )
        return Response({"username": request.user.get_username(), "organizations": roles})


# --- organizations, projects, project types, audit events -------------------------------


def _org_out(organization: Organization, role: str) -> dict[str, Any]:
    return {"slug": organization.slug, "name": organization.name, "role": role}


class OrganizationsView(APIView):
    @extend_schema(responses={200: s.OrganizationOut(many=True)}, operation_id="organizations")
    def get(self, request: Request) -> Response:
        """The organizations the caller belongs to, with the caller's role."""
        if getattr(request.user, "is_superuser", False):
            return Response([_org_out(o, Role.ADMIN) for o in Organization.objects.all()])
        rows = Membership.objects.filter(user_id=int(request.user.pk or 0)).select_related(
            "organization"
        )
        return Response(
            [_org_out(m.organization, m.role) for m in rows.order_by("organization__slug")]
        )


def _project_out(project: Project) -> dict[str, Any]:
    return {
        "id": project.pk,
        "slug": project.slug,
        "name": project.name,
        "description": project.description,
        "project_type": project.project_type.slug,
        "owners": sorted(u.get_username() for u in project.owners.all()),
    }


class ProjectsView(APIView):
    @extend_schema(
        parameters=[s.ProjectsQuery],
        responses={200: s.ProjectOut(many=True)},
        operation_id="projects_list",
    )
    def get(self, request: Request, org: str) -> Response:
        query = s.parse(s.ProjectsQuery, request.query_params)
        organization, _ = load_organization(request.user, org)
        rows = Project.objects.filter(organization=organization).select_related("project_type")
        if query.get("project_type"):
            rows = rows.filter(project_type__slug=query["project_type"])
        if query.get("slug"):
            rows = rows.filter(slug=query["slug"])
        if query.get("q"):
            rows = rows.filter(name__icontains=query["q"])
        return Response([_project_out(p) for p in rows.prefetch_related("owners").order_by("slug")])


class ProjectView(APIView):
    @extend_schema(responses={200: s.ProjectOut}, operation_id="project_get")
    def get(self, request: Request, org: str, project_id: int) -> Response:
        organization, _ = load_organization(request.user, org)
        project = (
            Project.objects.filter(organization=organization, pk=project_id)
            .select_related("project_type")
            .first()
        )
        if project is None:
            raise Http404
        return Response(_project_out(project))


class ProjectTypesView(APIView):
    @extend_schema(responses={200: s.ProjectTypeOut(many=True)}, operation_id="project_types")
    def get(self, request: Request, org: str) -> Response:
        organization, _ = load_organization(request.user, org)
        rows = ProjectType.objects.filter(organization=organization).order_by("slug")
        return Response(
            [
                {
                    "slug": t.slug,
                    "name": t.name,
                    "description": t.description,
                    "projects": t.projects.count(),
                }
                for t in rows
            ]
        )


class AuditEventsView(APIView):
    @extend_schema(
        parameters=[s.AuditQuery],
        responses={200: s.AuditPageOut},
        operation_id="audit_events",
    )
    def get(self, request: Request, org: str) -> Response:
        """The organization's audit trail, newest first (operators). Never holds a value."""
        query = s.parse(s.AuditQuery, request.query_params)
        organization, _ = load_organization(request.user, org)
        if not is_operator(request.user, organization):
            raise Problem(
                403,
                "permission_denied",
                "reading the audit trail is an operator action (active staff with the admin role)",
            )
        page = audit.events(
            organization,
            action=query.get("action"),
            actor=query.get("actor"),
            plugin=query.get("plugin"),
            project_id=query.get("project"),
            since=query.get("since"),
            until=query.get("until"),
            before_id=query.get("before"),
            limit=query["limit"],
        )
        return Response(
            {
                "events": [audit.event_out(e) for e in page.events],
                "next_before": page.next_before,
            }
        )


class ApiRootView(APIView):
    """``/api/``: where to start. Open to anyone (it lists links, no data)."""

    permission_classes = (AllowAny,)

    @extend_schema(responses={200: s.ApiRootOut}, operation_id="api_root")
    def get(self, request: Request) -> Response:
        def url(name: str, *args: Any) -> str:
            return request.build_absolute_uri(reverse(name, args=args))

        org = "{org}"
        return Response(
            {
                "docs": url("swagger-ui"),
                "schema": url("schema"),
                "whoami": url("whoami"),
                "organizations": url("organizations"),
                "plugin_registry": url("plugin-registry"),
                "per_organization": {
                    "projects": f"{url('organizations')}/{org}/projects",
                    "project_types": f"{url('organizations')}/{org}/project-types",
                    "services": f"{url('organizations')}/{org}/services",
                    "plugins": f"{url('organizations')}/{org}/plugins",
                    "install": f"{url('organizations')}/{org}/plugins/install",
                    "audit_events": f"{url('organizations')}/{org}/audit-events",
                    "project_tabs": f"{url('organizations')}/{org}/projects/{{id}}/tabs",
                },
                "authentication": "Session (browser) or 'Authorization: Token <key>'.",
            }
        )
