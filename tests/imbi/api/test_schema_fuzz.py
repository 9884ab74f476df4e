"""Schemathesis over /api/schema/: no 5xx and no response that violates the schema.

Every generated request is sent as an org admin who may read secrets, against a real
project whose tabs are served by the example plugin, so fuzzed parameters reach the plugin
path (not just 404s).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from imbi.core.models import Membership, Organization, Project, ProjectType, Role
from plugins_core.models import (
    Plugin,
    ProjectTypePlugin,
    ServiceApplication,
    ThirdPartyService,
)


@pytest.fixture
def api_schema(db: Any) -> Iterator[Any]:
    from django.core.signals import request_finished, request_started
    from django.core.wsgi import get_wsgi_application
    from django.db import close_old_connections

    # Like Django's test client: keep the test's transaction open across WSGI requests.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def world(db: Any, django_user_model: Any) -> dict[str, Any]:
    from rest_framework.authtoken.models import Token

    org = Organization.objects.create(slug="fuzz", name="Fuzz")
    ptype = ProjectType.objects.create(organization=org, slug="api", name="API")
    project = Project.objects.create(organization=org, project_type=ptype, slug="p", name="P")
    service = ThirdPartyService.objects.create(
        organization=org, vendor="example", name="E", slug="example"
    )
    ServiceApplication.objects.create(service=service, credentials={"api_token": "t"})
    for handler, plugin_type in (("example-config", "configuration"), ("example-logs", "logs")):
        plugin = Plugin.objects.create(
            organization=org,
            service=service,
            slug=handler,
            plugin_type=plugin_type,
            handler=handler,
        )
        ProjectTypePlugin.objects.create(
            project_type=ptype,
            plugin=plugin,
            tab=plugin_type,
            default=True,
            search_template="${project}/",
        )
    user = django_user_model.objects.create_user("fuzzer", password="pw")
    Membership.objects.create(user=user, organization=org, role=Role.ADMIN, can_read_secrets=True)
    token = Token.objects.create(user=user).key
    return {
        "org": org.slug,
        "project_id": project.pk,
        "type_slug": ptype.slug,
        "headers": {"Authorization": f"Token {token}"},
    }


def test_api_conforms_to_its_schema(api_schema: Any, world: dict[str, Any]) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15  # every endpoint is in the schema
    fixed = {
        "org": world["org"],
        "project_id": world["project_id"],
        "type_slug": world["type_slug"],
    }

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case: Any) -> None:
            for name, value in fixed.items():
                if case.path_parameters and name in case.path_parameters:
                    case.path_parameters[name] = value
            # ignored_auth probes with broken credentials, but every call here is authenticated.
            # positive_data_acceptance expects 2xx for any schema-valid body; plugin options
            # and search templates are validated against each plugin's manifest, which no
            # static schema can express, so a 400 with field errors is the right answer there.
            case.call_and_validate(
                headers=world["headers"], excluded_checks=[ignored_auth, positive_data_acceptance]
            )

        check()
