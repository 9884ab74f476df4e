"""Permission approvals as first-class: ``GET/POST /api/plugin-distributions/{name}/approvals``,
``manage.py plugin approve NAME[==VERSION]`` and the admin action, one service behind all three.

An approval adds what the installed version declares to what was approved before: a permission
granted to an earlier version stays granted (a rollback needs no new approval)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from imbi.core.models import AuditEvent, Project, Role
from plugins_core import registry
from plugins_core.models import Plugin

pytestmark = pytest.mark.django_db

OLD = {"network_hosts": ["old.example.com"], "storage": False}  # what an earlier version had


@pytest.fixture
def dist(config_plugin: Plugin) -> str:
    entry = registry.current().get("example-config")
    assert entry is not None
    return entry.distribution


@pytest.fixture
def pending(config_plugin: Plugin) -> Plugin:
    """The installed version asks for api.example.com and storage; an earlier one was approved."""
    config_plugin.approved_permissions = dict(OLD)
    config_plugin.save()
    return config_plugin


@pytest.fixture
def root(django_user_model: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_superuser("root", "r@e.com", "pw"))
    return client


def url(name: str) -> str:
    return f"/api/plugin-distributions/{name}/approvals"


def tab(project: Project) -> str:
    return f"/api/orgs/{project.organization.slug}/projects/{project.pk}/configuration"


def test_the_api_lists_and_approves_keeping_what_was_approved_before(
    pending: Plugin, dist: str, root: APIClient, api: Any, project: Project, bind_type: Any
) -> None:
    bind_type(pending, default=True)
    assert api(Role.VIEWER).get(tab(project)).status_code == 503
    listed = root.get(url(dist))
    assert listed.status_code == 200, listed.content
    body = listed.json()
    version = registry.current().get("example-config").version  # type: ignore[union-attr]
    assert body["version"] == version
    assert "network api.example.com" in body["declared"]
    assert body["pending"] == ["network api.example.com", "storage"]
    mine = next(p for p in body["plugins"] if p["plugin"] == pending.slug)
    assert mine == {
        "organization": "acme",
        "plugin": pending.slug,
        "entry_point": "example-config",
        "approved": ["network old.example.com"],
        "pending": ["network api.example.com", "storage"],
    }

    done = root.post(url(dist), {"version": version}, format="json")
    assert done.status_code == 200, done.content
    assert done.json()["pending"] == []
    assert pending.slug in done.json()["approved_plugins"]
    pending.refresh_from_db()
    # the earlier version's host is still approved: a rollback needs no new approval
    assert pending.approved_permissions["network_hosts"] == ["old.example.com", "api.example.com"]
    assert pending.approved_permissions["storage"] is True
    event = AuditEvent.objects.get(action=AuditEvent.Action.PLUGIN_STATE)
    assert event.actor_name == "root" and event.plugin_slug == pending.slug
    assert event.detail.startswith("permissions approved: network old.example.com, api.example")
    assert api(Role.VIEWER, username="second").get(tab(project)).status_code == 200
    again = root.post(url(dist), {}, format="json")
    assert again.json()["approved_plugins"] == []  # nothing left to approve: no audit
    assert AuditEvent.objects.filter(action=AuditEvent.Action.PLUGIN_STATE).count() == 1


def test_refusals_are_problems_and_change_nothing(
    pending: Plugin, dist: str, root: APIClient, api: Any
) -> None:
    wrong = root.post(url(dist), {"version": "0.0.1"}, format="json")
    assert wrong.status_code == 409
    assert wrong["Content-Type"] == "application/problem+json"
    assert wrong.json()["code"] == "version_mismatch"
    missing = root.get(url("no-such-plugin"))
    assert missing.status_code == 404 and missing.json()["code"] == "not_installed"
    member = api(Role.ADMIN)
    assert member.get(url(dist)).status_code == 403
    assert member.post(url(dist), {}, format="json").status_code == 403
    pending.refresh_from_db()
    assert pending.approved_permissions == OLD
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.PLUGIN_STATE).exists()


def test_manage_py_plugin_approve(pending: Plugin, dist: str) -> None:
    version = registry.current().get("example-config").version  # type: ignore[union-attr]
    with pytest.raises(CommandError, match=r"^version_mismatch: "):
        call_command("plugin", "approve", f"{dist}==0.0.1")
    with pytest.raises(CommandError, match=r"^not_installed: "):
        call_command("plugin", "approve", "no-such-plugin")
    out = io.StringIO()
    call_command("plugin", "approve", f"{dist}=={version}", stdout=out)
    assert f"approved for 1 plugin(s) {pending.slug}" in out.getvalue()
    pending.refresh_from_db()
    assert "old.example.com" in pending.approved_permissions["network_hosts"]
    event = AuditEvent.objects.get(action=AuditEvent.Action.PLUGIN_STATE)
    assert event.actor_name == "system"
    out = io.StringIO()
    call_command("plugin", "approve", dist, "--json", stdout=out)
    assert json.loads(out.getvalue())["pending"] == []


def test_a_first_install_is_approved_at_install(config_plugin: Plugin) -> None:
    entry = registry.current().get("example-config")
    assert entry is not None and entry.manifest is not None
    assert config_plugin.approved_permissions == entry.manifest.permissions.to_dict()
