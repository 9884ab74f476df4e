"""Wire shapes of the platform endpoints (organizations, projects, project types, audit)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from imbi.core.models import AuditEvent


def parse(serializer_class: Any, data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class OrganizationOut(serializers.Serializer):  # type: ignore[type-arg]
    slug = serializers.CharField()
    name = serializers.CharField()
    role = serializers.CharField(help_text="The caller's role in it.")


class ProjectsQuery(serializers.Serializer):  # type: ignore[type-arg]
    project_type = serializers.SlugField(required=False, help_text="Project type slug.")
    slug = serializers.SlugField(required=False, help_text="Exact project slug.")
    q = serializers.CharField(required=False, max_length=200, help_text="Name contains.")


class ProjectOut(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField(help_text="Use in /api/orgs/{org}/projects/{id}/...")
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    project_type = serializers.CharField()
    owners = serializers.ListField(child=serializers.CharField())


class ProjectTypeOut(serializers.Serializer):  # type: ignore[type-arg]
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    projects = serializers.IntegerField()


class AuditQuery(serializers.Serializer):  # type: ignore[type-arg]
    action = serializers.ChoiceField(choices=AuditEvent.Action.choices, required=False)
    actor = serializers.CharField(required=False, max_length=150, help_text="Username.")
    plugin = serializers.SlugField(required=False)
    project = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="Project id."
    )
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    before = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=2**63 - 1,
        help_text="Cursor: next_before of the previous page.",
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=500, default=50)


class AuditEventOut(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor = serializers.CharField()
    action = serializers.CharField()
    project = serializers.IntegerField(allow_null=True)
    plugin = serializers.CharField(allow_blank=True)
    key = serializers.CharField(allow_blank=True)
    detail = serializers.CharField(allow_blank=True)


class AuditPageOut(serializers.Serializer):  # type: ignore[type-arg]
    events = AuditEventOut(many=True)
    next_before = serializers.IntegerField(
        allow_null=True, help_text="Pass as ?before= for the next (older) page; null at the end."
    )


class ApiRootOut(serializers.Serializer):  # type: ignore[type-arg]
    docs = serializers.URLField()
    schema = serializers.URLField()
    whoami = serializers.URLField()
    organizations = serializers.URLField()
    plugin_registry = serializers.URLField()
    per_organization = serializers.DictField(child=serializers.CharField())
    authentication = serializers.CharField()
