"""Health badges: one function (``plugins_core.serving.health.badge``) behind the admin, the project
page and the API; tests recorded by the wizard, the admin button, the API and the periodic
check; an install after a failed test asks for confirmation."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from imbi.core.models import AuditEvent, Organization, Project, ProjectType, Role
from plugins_core.models import ConnectionCheck, Plugin, ServiceApplication, ThirdPartyService
from plugins_core.serving import health
from tests.plugins_core.pages.test_wizard import post, run_to_options, start, step_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(django_user_model: Any, org: Organization) -> Client:
    user = django_user_model.objects.create_superuser("operator", "op@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def badge_statuses(html: str) -> list[str]:
    return re.findall(r'data-status="([a-z_]+)"', html)


def test_badge_order_registry_then_credentials_then_last_test(
    org: Organization, service: ThirdPartyService, install: Any
) -> None:
    plugin = install("example-config")
    assert health.badge(plugin).status == "untested"
    health.record(plugin, False, "the API token was rejected", 12, "api")
    found = health.badge(Plugin.objects.get(pk=plugin.pk))
    assert (found.status, found.reason, found.duration_ms) == (
        "connection_failed",
        "the API token was rejected",
        12,
    )
    ServiceApplication.objects.filter(service=service).delete()
    assert health.badge(Plugin.objects.get(pk=plugin.pk)).status == "credentials_missing"
    Plugin.objects.filter(pk=plugin.pk).update(enabled=False)
    assert health.badge(Plugin.objects.get(pk=plugin.pk)).status == "plugin_disabled"


def test_badges_come_in_one_query_for_a_listing(
    org: Organization, service: ThirdPartyService, install: Any, django_assert_num_queries: Any
) -> None:
    for n in range(5):
        health.record(install("example-config", f"cfg{n}"), n % 2 == 0, "m", 1, "api")
    rows = health.with_health(Plugin.objects.filter(organization=org))
    with django_assert_num_queries(1):
        statuses = [health.badge(p).status for p in rows]
    assert statuses.count("ok") == 3 and statuses.count("connection_failed") == 2


def test_a_rejected_token_shows_a_failed_badge_in_admin_and_project_page(
    operator: Client,
    org: Organization,
    project: Project,
    project_type: ProjectType,
    make_member: Any,
) -> None:
    """Install through the wizard with a token the backend rejects, confirm the install
    despite the failed test, then look at the admin list, the plugin page, the API and the
    project page."""
    pid = start(operator, org)
    post(operator, pid, "service", {"mode": "template", "region": "eu-west-1"}, "credentials")
    post(operator, pid, "credentials", {"api_token": "bad"}, "options")
    post(operator, pid, "options", {"prefix": "cfg/", "max_keys": "50", "mode": "normal"}, "test")
    operator.post(
        step_url(pid, "test"),
        {"action": "test", "sample_project": project.pk, "search_template": "${project}/"},
    )
    post(operator, pid, "test", {"action": "Next"}, "bind")
    post(
        operator,
        pid,
        "bind",
        {"project_types": [project_type.pk], "default": "on", "search_template": "${project}/"},
        "finish",
    )
    refused = operator.post(step_url(pid, "finish"), {"install": "Install"})
    assert refused.status_code == 200
    assert "Install anyway" in refused.content.decode()
    assert not Plugin.objects.exists()
    done = operator.post(step_url(pid, "finish"), {"install": "Install", "confirm_failed": "1"})
    assert done.status_code == 302, done.content.decode()[:2000]
    plugin = Plugin.objects.get(handler="example-config")
    check = ConnectionCheck.objects.get(plugin=plugin)
    assert (check.status, check.trigger, check.message) == (
        "failed",
        "wizard",
        "the API token was rejected",
    )

    changelist = operator.get(reverse("admin:plugins_core_plugin_changelist")).content.decode()
    assert "connection_failed" in badge_statuses(changelist)
    change = operator.get(reverse("admin:plugins_core_plugin_change", args=[plugin.pk]))
    assert badge_statuses(change.content.decode()) == ["connection_failed"]
    assert "Test connection" in change.content.decode()

    owner = make_member(org, Role.VIEWER, username="reader")
    reader = Client()
    reader.force_login(owner)
    page = reader.get(reverse("ui:project", args=[org.slug, project.pk])).content.decode()
    assert badge_statuses(page) == ["connection_failed"]
    assert "the API token was rejected" in page
    tabs = reader.get(f"/api/orgs/{org.slug}/projects/{project.pk}/tabs").json()["tabs"]
    assert [s["status"] for t in tabs for s in t["sources"]] == ["connection_failed"]

    # The admin button re-tests after the token is fixed; the badge turns ok everywhere.
    app = ServiceApplication.objects.get(service=plugin.service)
    app.credentials = {"api_token": "fixed-token-6d1f"}
    app.save()
    response = operator.post(
        reverse("admin:plugins_core_plugin_test", args=[plugin.pk]), {"next": "/admin/"}
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert ConnectionCheck.objects.get(plugin=plugin).trigger == "admin"
    page = reader.get(reverse("ui:project", args=[org.slug, project.pk])).content.decode()
    assert badge_statuses(page) == ["ok"]
    assert AuditEvent.objects.filter(action="plugin.test", actor_name="operator").count() == 1


def test_the_service_button_tests_every_plugin_and_needs_an_admin(
    operator: Client,
    org: Organization,
    service: ThirdPartyService,
    install: Any,
    django_user_model: Any,
) -> None:
    install("example-config")
    install("example-logs")
    url = reverse("admin:plugins_core_thirdpartyservice_test", args=[service.pk])
    response = operator.post(url, follow=True)
    assert "example-config: connection ok" in response.content.decode().lower()
    assert ConnectionCheck.objects.filter(trigger="admin").count() == 2
    staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    other = Client()
    other.force_login(staff)
    assert other.post(url).status_code == 403


def test_run_to_options_is_shared(operator: Client, org: Organization) -> None:
    assert run_to_options(operator, org)


def test_the_periodic_task_is_scheduled_and_records_results(
    org: Organization, service: ThirdPartyService, install: Any, settings: Any
) -> None:
    from plugins_core.tasks import check_connections

    schedule = settings.CELERY_BEAT_SCHEDULE["check-connections"]
    assert schedule["task"] == check_connections.name
    plugin = install("example-config")
    assert check_connections.delay().get() == {"ok": 1, "failed": 0, "loading": 0}
    assert ConnectionCheck.objects.get(plugin=plugin).trigger == "periodic"
