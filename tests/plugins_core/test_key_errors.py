"""A row no configured key opens: 503 ``credentials_unreadable`` with an operator-facing
reason, never ``plugin_failed``; nothing is written; the log names fingerprints, never keys."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings

from imbi.core.crypto import fingerprint
from imbi.core.models import AuditEvent, Project, Role
from plugins_core.models import Plugin, PluginStorage, ServiceApplication, ThirdPartyService

PROBLEM = "application/problem+json"
LOST_KEY = Fernet.generate_key().decode()


@pytest.fixture
def editor_api(api: Any, project: Project, config_plugin: Plugin, bind_type: Any) -> Any:
    bind_type(config_plugin, default=True)
    return api(Role.EDITOR, secrets=True)


def url(project: Project, suffix: str) -> str:
    return f"/api/orgs/{project.organization.slug}/projects/{project.pk}/configuration{suffix}"


def reencrypt_with_a_lost_key(rows: Any) -> None:
    loaded = list(rows)  # decrypted with the configured key
    with override_settings(IMBI_ENCRYPTION_KEYS=[LOST_KEY]):
        for row in loaded:
            row.save()


def assert_unreadable(response: Any) -> dict[str, Any]:
    assert response.status_code == 503, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["code"] == "credentials_unreadable"
    assert "plugin_failed" not in response.content.decode()
    assert "IMBI_ENCRYPTION_KEYS" in body["detail"]  # tells the operator what to fix
    assert LOST_KEY not in response.content.decode()
    return dict(body)


def test_plugin_storage_no_key_opens_answers_503_credentials_unreadable(
    editor_api: Any,
    project: Project,
    config_plugin: Plugin,
    caplog: pytest.LogCaptureFixture,
) -> None:
    written = editor_api.put(
        url(project, "/keys/A"), {"data_type": "string", "value": "1"}, format="json"
    )
    assert written.status_code == 200
    reencrypt_with_a_lost_key(PluginStorage.objects.filter(plugin=config_plugin))
    events = AuditEvent.objects.count()

    with caplog.at_level(logging.ERROR):
        body = assert_unreadable(editor_api.get(url(project, "/values")))
    assert f"plugin '{config_plugin.slug}'" in body["detail"]
    assert fingerprint(LOST_KEY) not in caplog.text  # the configured keys' prints only
    assert "no configured key opens it" in caplog.text
    assert LOST_KEY not in caplog.text

    # A write that must read the row first fails the same way, and changes nothing.
    assert_unreadable(
        editor_api.put(
            url(project, "/keys/B"), {"data_type": "string", "value": "2"}, format="json"
        )
    )
    assert AuditEvent.objects.count() == events
    assert PluginStorage.objects.filter(plugin=config_plugin).count() == 1


def test_service_credentials_no_key_opens_answer_503_credentials_unreadable(
    editor_api: Any, project: Project, service: ThirdPartyService
) -> None:
    reencrypt_with_a_lost_key(ServiceApplication.objects.filter(service=service))
    body = assert_unreadable(editor_api.get(url(project, "/values")))
    assert f"service '{service.slug}'" in body["detail"]


def test_an_admin_page_that_loads_an_unreadable_row_answers_503_with_the_reason(
    admin_client: Any, service: ThirdPartyService, caplog: pytest.LogCaptureFixture
) -> None:
    reencrypt_with_a_lost_key(ServiceApplication.objects.filter(service=service))
    with caplog.at_level(logging.ERROR):
        response = admin_client.get(f"/admin/plugins_core/thirdpartyservice/{service.pk}/change/")
    assert response.status_code == 503
    text = response.content.decode()
    assert "plugins_core.ServiceApplication.credentials" in text
    assert "IMBI_ENCRYPTION_KEYS" in text
    assert "Traceback" not in text and LOST_KEY not in text
    assert "configured key fingerprints" in caplog.text  # the log has the detail
    assert LOST_KEY not in caplog.text
