"""The in-process runner: every call crosses the SDK JSON contract; bad plugins get a 502."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.test import override_settings
from imbi_plugin_sdk import wire
from imbi_plugin_sdk.wire import Call

from imbi.core.models import Project, Role
from plugins_core.serving import runner
from tests.plugins_core.conftest import API_TOKEN

pytestmark = pytest.mark.django_db


def url(project: Project, suffix: str = "") -> str:
    return f"/api/orgs/{project.organization.slug}/projects/{project.pk}/{suffix}"


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Call, str]]:
    """Every Call the runner executes, and the reply text it got back."""
    seen: list[tuple[Call, str]] = []
    real = wire.execute

    def spy(call: Call, *args: Any, **kwargs: Any) -> wire.Reply:
        reply = real(call, *args, **kwargs)
        seen.append((call, reply.to_json()))
        return reply

    monkeypatch.setattr(runner, "execute", spy)
    return seen


def test_every_api_call_goes_through_call_and_reply_json(
    project: Project, install: Any, bind_type: Any, api: Any, recorded: list[tuple[Call, str]]
) -> None:
    bind_type(install("example-config", "cfg"))
    bind_type(install("example-logs", "lg"))
    editor = api(Role.EDITOR, secrets=True)
    put = editor.put(
        url(project, "configuration/keys/DB_HOST"),
        {"data_type": "string", "value": "db.internal"},
        format="json",
    )
    assert put.status_code == 200, put.content
    assert editor.get(url(project, "configuration")).status_code == 200
    assert editor.get(url(project, "configuration/values?reveal=true")).status_code == 200
    assert editor.delete(url(project, "configuration/keys/DB_HOST")).status_code == 204
    assert editor.get(url(project, "logs")).status_code == 200
    methods = [call.method for call, _ in recorded]
    assert methods == ["set_value", "list_keys", "get_values", "delete_key", "search"]
    set_call = recorded[0][0]
    assert set_call.entry_point == "example-config"
    assert set_call.arguments["value"] == {
        "data_type": "string",
        "value": "db.internal",
        "secret": False,
    }
    assert set_call.credentials == {"api_token": API_TOKEN}
    assert set_call.context["project_id"] == project.pk
    assert API_TOKEN not in repr(set_call)
    reply = json.loads(recorded[2][1])
    assert reply["result"][0]["key"] == "DB_HOST" and reply["result"][0]["value"] == "db.internal"


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("nan", "returned a get_values result that is not JSON: Out of range float values"),
        ("object", "returned an invalid get_values result: item 0: expected ConfigValue"),
        ("huge", "returned a get_values reply of 52428"),
        ("exit", "failed (SystemExit)"),
        ("crash", "failed (RuntimeError)"),
    ],
)
def test_misbehaving_plugins_are_502_plugin_failed_with_a_reason(
    project: Project,
    install: Any,
    bind_type: Any,
    api: Any,
    mode: str,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    bind_type(
        install(
            "example-config",
            f"bad-{mode}",
            options={"mode": mode},
        )
    )
    response = api(Role.EDITOR, secrets=True).get(
        url(project, f"configuration/values?source=bad-{mode}")
    )
    assert response.status_code == 502, response.content[:500]
    assert response["Content-Type"].startswith("application/problem+json")
    assert len(response.content) < 2000
    body = response.json()
    assert body["code"] == "plugin_failed"
    assert f"plugin 'example-config' {reason}" in body["detail"]
    assert API_TOKEN not in response.content.decode() and API_TOKEN not in caplog.text


def test_the_reply_cap_is_the_configured_one(
    project: Project, install: Any, bind_type: Any, api: Any
) -> None:
    bind_type(install("example-config", "cfg"))
    editor = api(Role.EDITOR, secrets=True)
    put = editor.put(
        url(project, "configuration/keys/BLOB"),
        {"data_type": "string", "value": "y" * 5000},
        format="json",
    )
    assert put.status_code == 200
    assert editor.get(url(project, "configuration/values?reveal=true")).status_code == 200
    with override_settings(IMBI_PLUGIN_MAX_REPLY_BYTES=4096):
        response = editor.get(url(project, "configuration/values?reveal=true"))
    assert response.status_code == 502
    assert "over the 4096-byte limit" in response.json()["detail"]


def test_a_malformed_reply_text_is_plugin_failed(
    project: Project, install: Any, bind_type: Any, api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an isolated transport might deliver: the host never trusts the reply's shape."""
    bind_type(install("example-config", "cfg"))
    monkeypatch.setattr(
        runner.InProcessRunner, "transport", lambda *a, **k: '{"result": [{"nokey": NaN}]}'
    )
    response = api(Role.EDITOR).get(url(project, "configuration"))
    assert response.status_code == 502
    assert response.json()["detail"] == "plugin 'example-config' sent a malformed reply"
