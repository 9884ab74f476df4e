"""Fixtures for the plugin framework: the example plugin installed in an organization."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from imbi.core.models import Organization, Project, ProjectType, Role
from plugins_core.models import (
    Plugin,
    ProjectPlugin,
    ProjectTypePlugin,
    ServiceApplication,
    ThirdPartyService,
)

API_TOKEN = "example-token-5f1e9c0a7b"


@pytest.fixture
def service(org: Organization) -> ThirdPartyService:
    svc = ThirdPartyService.objects.create(
        organization=org, vendor="example", name="Example", slug="example"
    )
    ServiceApplication.objects.create(service=svc, credentials={"api_token": API_TOKEN})
    return svc


@pytest.fixture
def install(org: Organization, service: ThirdPartyService) -> Any:
    def make(
        handler: str,
        slug: str | None = None,
        *,
        svc: ThirdPartyService | None = None,
        **fields: Any,
    ) -> Plugin:
        plugin_type = "logs" if "logs" in handler else "configuration"
        return Plugin.objects.create(
            organization=(svc or service).organization,
            service=svc or service,
            slug=slug or handler,
            plugin_type=fields.pop("plugin_type", plugin_type),
            handler=handler,
            **fields,
        )

    return make


@pytest.fixture
def config_plugin(install: Any) -> Plugin:
    return install("example-config")


@pytest.fixture
def logs_plugin(install: Any) -> Plugin:
    return install("example-logs")


@pytest.fixture
def bind_type(project_type: ProjectType) -> Any:
    def make(plugin: Plugin, **fields: Any) -> ProjectTypePlugin:
        return ProjectTypePlugin.objects.create(
            project_type=project_type, plugin=plugin, tab=plugin.plugin_type, **fields
        )

    return make


@pytest.fixture
def bind_project(project: Project) -> Any:
    def make(plugin: Plugin, **fields: Any) -> ProjectPlugin:
        return ProjectPlugin.objects.create(
            project=project, plugin=plugin, tab=plugin.plugin_type, **fields
        )

    return make


@pytest.fixture
def api(make_member: Any, org: Organization) -> Any:
    """An API client logged in with a token as a member of ``org`` with ``role``."""

    def make(
        role: str = Role.VIEWER,
        *,
        secrets: bool = False,
        organization: Organization | None = None,
        username: str | None = None,
    ) -> APIClient:
        from rest_framework.authtoken.models import Token

        user = make_member(organization or org, role, secrets=secrets, username=username)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        client.user = user  # type: ignore[attr-defined]
        return client

    return make
