"""Audit details of plugin-data changes made in the admin: service settings with old and
new values (the base URL included), plugin options by name only, the service page's plugin
inline (``plugin.state``, as everywhere else) and bindings. The walk over every admin model
is in tests/imbi/core/test_admin_audit.py."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from imbi.core.models import AuditEvent, Membership, Organization, Project, Role
from plugins_core.models import Plugin, ServiceApplication, ThirdPartyService
from tests.plugins_core.pages.test_forms import SIGNING_KEY, Secretive, use_handler

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(org: Organization, django_user_model: Any) -> Client:
    user = django_user_model.objects.create_user("op", password="pw", is_staff=True)
    Membership.objects.create(user=user, organization=org, role=Role.ADMIN)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def superuser_client(django_user_model: Any) -> Client:
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(root)
    return client


def _service_post(service: ThirdPartyService, settings: str) -> dict[str, Any]:
    app = ServiceApplication.objects.get(service=service)
    return {
        "organization": service.organization_id,
        "vendor": service.vendor,
        "name": service.name,
        "slug": service.slug,
        "category": "",
        "identity": "",
        "settings": settings,
        "template_source": "",
        "application-TOTAL_FORMS": "1",
        "application-INITIAL_FORMS": "1",
        "application-MIN_NUM_FORMS": "0",
        "application-MAX_NUM_FORMS": "1",
        "application-0-id": app.pk,
        "application-0-service": service.pk,
        "application-0-new_credentials": "",
        "plugins-TOTAL_FORMS": "0",
        "plugins-INITIAL_FORMS": "0",
        "plugins-MIN_NUM_FORMS": "0",
        "plugins-MAX_NUM_FORMS": "1000",
    }


def test_service_settings_changes_record_old_and_new_values(
    operator_client: Client, service: ThirdPartyService
) -> None:
    service.settings = {"base_url": "https://old.example", "region": "eu"}
    service.save()
    url = reverse("admin:plugins_core_thirdpartyservice_change", args=(service.pk,))
    response = operator_client.post(
        url, _service_post(service, '{"base_url": "https://new.example", "account": "7"}')
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action=AuditEvent.Action.SERVICE_CHANGE)
    assert event.organization == service.organization and event.actor_name == "op"
    assert (
        "settings account: unset -> '7'; base_url: 'https://old.example' -> "
        "'https://new.example'; region: 'eu' -> unset"
    ) in event.detail


def test_plugin_option_changes_name_options_never_values(
    superuser_client: Client, install: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_handler(monkeypatch, "secretive", Secretive)
    plugin = install("secretive", options={"endpoint": "https://x", "signing_key": "old-key"})
    url = reverse("admin:plugins_core_plugin_change", args=(plugin.pk,))
    data = {
        "service": plugin.service_id,
        "slug": plugin.slug,
        "name": "",
        "enabled": "on",
        "endpoint": "https://x",
        "retries": "3",
        "region": "us",
        "headers": "",
        "signing_key": SIGNING_KEY,
    }
    response = superuser_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action=AuditEvent.Action.PLUGIN_CHANGE)
    assert event.plugin_slug == "secretive"
    assert "options changed: region, retries, signing_key, verbose" in event.detail
    assert SIGNING_KEY not in event.detail and "old-key" not in event.detail


def test_service_page_plugin_inline_enable_disable_is_plugin_state(
    operator_client: Client, service: ThirdPartyService, config_plugin: Plugin
) -> None:
    url = reverse("admin:plugins_core_thirdpartyservice_change", args=(service.pk,))
    data = {
        **_service_post(service, "{}"),
        "plugins-TOTAL_FORMS": "1",
        "plugins-INITIAL_FORMS": "1",
        "plugins-0-id": config_plugin.pk,
        "plugins-0-service": service.pk,
        "plugins-0-slug": config_plugin.slug,
        "plugins-0-name": "",
        "plugins-0-plugin_type": "configuration",
    }  # "enabled" left out: unchecked
    assert operator_client.post(url, data).status_code == 302
    config_plugin.refresh_from_db()
    assert config_plugin.enabled is False
    assert list(
        AuditEvent.objects.filter(action=AuditEvent.Action.PLUGIN_STATE).values_list(
            "plugin_slug", "detail", "actor_name"
        )
    ) == [("example-config", "disabled", "op")]
    assert operator_client.post(url, {**data, "plugins-0-enabled": "on"}).status_code == 302
    assert AuditEvent.objects.filter(detail="enabled").count() == 1


def test_binding_admin_changes_are_binding_events(
    operator_client: Client, project: Project, config_plugin: Plugin, bind_project: Any
) -> None:
    binding = bind_project(config_plugin)
    url = reverse("admin:plugins_core_projectplugin_change", args=(binding.pk,))
    data = {
        "project": project.pk,
        "plugin": config_plugin.pk,
        "tab": "configuration",
        "search_template": "${org}/${project}/",
        "options": "{}",
    }
    assert operator_client.post(url, data).status_code == 302
    event = AuditEvent.objects.get(action=AuditEvent.Action.BINDING_CHANGE)
    assert (event.project, event.plugin_slug, event.actor_name) == (project, "example-config", "op")
    assert "Changed Search template." in event.detail
