"""The periodic connection test: every enabled plugin through resolution and the runner,
one log line each, secrets redacted, problems reported by code."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.test import override_settings

from imbi.celery import app
from plugins_core.models import Plugin, ServiceApplication, ThirdPartyService
from plugins_core.serving import health
from plugins_core.tasks import check_connections

API_TOKEN = "example-token-5f1e9c0a7b"  # the service fixture's credential


def test_the_task_is_registered_and_scheduled() -> None:
    app.loader.import_default_modules()
    assert "plugins_core.tasks.check_connections" in app.tasks
    schedule = settings.CELERY_BEAT_SCHEDULE["check-connections"]
    assert schedule["task"] == "plugins_core.tasks.check_connections"
    assert schedule["schedule"] == settings.IMBI_CONNECTION_CHECK_INTERVAL


def test_checks_every_enabled_plugin_and_logs_the_outcome(
    install: Any, service: ThirdPartyService, caplog: pytest.LogCaptureFixture
) -> None:
    install("example-config", "cfg")
    install("example-config", "off", enabled=False)
    with caplog.at_level(logging.INFO, logger="plugins_core.serving.health"):
        counts = check_connections.delay().get()  # eager under the test settings
    assert counts == {"ok": 1, "failed": 0, "loading": 0}
    assert "connection test acme/cfg: ok example backend reachable" in caplog.text
    assert "acme/off" not in caplog.text
    assert API_TOKEN not in caplog.text


def test_a_failing_connection_is_reported_without_its_secrets(
    install: Any, service: ThirdPartyService, caplog: pytest.LogCaptureFixture
) -> None:
    install("example-config", "cfg")
    install("example-config", "crashy", options={"mode": "crash"})
    with caplog.at_level(logging.INFO):
        counts = check_connections()
    assert "connection test acme/crashy:" in caplog.text
    assert API_TOKEN not in caplog.text
    assert counts["ok"] + counts["failed"] == 2
    row = ServiceApplication.objects.get(service=service)
    row.credentials = {"api_token": "bad"}
    row.save()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert check_connections() == {"ok": 0, "failed": 2, "loading": 0}
    assert "connection test acme/cfg: failed the API token was rejected" in caplog.text


def test_unreadable_credentials_are_reported_by_code(
    install: Any, service: ThirdPartyService
) -> None:
    plugin: Plugin = install("example-config", "cfg")
    row = ServiceApplication.objects.get(service=service)
    with override_settings(IMBI_ENCRYPTION_KEYS=[Fernet.generate_key().decode()]):
        row.save()
    check = health.check_connection(plugin, trigger=health.ConnectionCheck.Trigger.PERIODIC)
    assert check.status == "failed"
    assert check.message.startswith("credentials_unreadable:")
