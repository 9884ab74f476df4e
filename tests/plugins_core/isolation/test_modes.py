"""Execution modes: one handler code in-process or isolated; the host's storage through
capability requests; the mode shown and changed by an admin (audited)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import override_settings

from imbi.core.models import AuditEvent, Role
from plugins_core import registry
from plugins_core.isolation import host
from plugins_core.isolation.modes import IN_PROCESS, ISOLATED, effective_mode
from plugins_core.models import ExecutionMode, Plugin, PluginStorage
from plugins_core.serving.resolution import resolve
from plugins_core.serving.runner import InProcessRunner, default_runner

MODIFIED = "2025-01-01T00:00:00+00:00"


def test_untrusted_distributions_are_never_imported_by_the_host() -> None:
    snapshot = registry.current()
    hostile = snapshot.get("hostile-healthy")
    assert hostile is not None and hostile.ok and hostile.isolated and hostile.handler is None
    assert hostile.manifest is not None and hostile.manifest.slug == "hostile-healthy"
    import sys

    assert "imbi_plugin_hostile" not in sys.modules
    catalog = snapshot.get("aws-ssm")
    assert catalog is not None and catalog.handler is not None and not catalog.isolated


@pytest.mark.parametrize(
    ("chosen", "handler", "expected"),
    [
        (ExecutionMode.AUTO, "example-config", IN_PROCESS),
        (ExecutionMode.ISOLATED, "example-config", ISOLATED),
        (ExecutionMode.IN_PROCESS, "example-config", IN_PROCESS),
        (ExecutionMode.AUTO, "hostile-healthy", ISOLATED),
        (ExecutionMode.IN_PROCESS, "hostile-healthy", ISOLATED),  # never imported by the host
    ],
)
def test_effective_mode(chosen: str, handler: str, expected: str) -> None:
    assert effective_mode(chosen, registry.current().get(handler)) == expected


@pytest.mark.parametrize("mode", [ExecutionMode.IN_PROCESS, ExecutionMode.ISOLATED])
def test_same_handler_same_results_in_both_modes(
    mode: str, project: Any, config_plugin: Plugin, bind_type: Any
) -> None:
    config_plugin.execution_mode = mode
    config_plugin.save()
    bind_type(config_plugin, default=True, search_template="${org}/${project}/")
    PluginStorage.objects.create(
        plugin=config_plugin,
        key="acme/billing/PORT",
        value=json.dumps(
            {"data_type": "number", "value": 8080, "secret": False, "modified": MODIFIED}
        ),
    )
    resolved = resolve(project, "configuration", timeout=3.0, storage_factory=_store())
    keys = default_runner().call(resolved, "list_keys")
    assert [(k.key, k.data_type.value) for k in keys] == [("PORT", "number")]
    values = default_runner().call(resolved, "get_values", ["PORT"])
    assert [(v.key, v.value) for v in values] == [("PORT", 8080)]
    # isolated calls went through a runner: one warm runner is now pooled
    assert len(host.pool().runners()) == (1 if mode == ExecutionMode.ISOLATED else 0)


def _store() -> Any:
    from plugins_core.serving.storage import DatabaseKeyValueStore

    return DatabaseKeyValueStore


def test_isolated_plugin_error_keeps_its_code_and_redacts_secrets(
    project: Any, install: Any, bind_type: Any, api: Any
) -> None:
    plugin = install("example-config", options={"mode": "denied"}, execution_mode="isolated")
    bind_type(plugin, default=True)
    response = api(Role.VIEWER).get(
        f"/api/orgs/{project.organization.slug}/projects/{project.pk}/configuration"
    )
    assert response.status_code == 502
    assert response.json()["code"] == "credentials_invalid"


def test_in_process_base_exception_is_plugin_failed(
    project: Any, install: Any, bind_type: Any
) -> None:
    """The same result checks in-process: a crash-mode plugin bug becomes plugin_failed."""
    plugin = install("example-config", options={"mode": "crash"})
    bind_type(plugin, default=True)
    resolved = resolve(project, "configuration", timeout=3.0)
    from imbi_plugin_sdk import PluginFailed

    with pytest.raises(PluginFailed):
        InProcessRunner().call(resolved, "list_keys")


def test_mode_is_shown_in_the_api(project: Any, config_plugin: Plugin, api: Any) -> None:
    admin = api(Role.ADMIN)
    listing = admin.get(f"/api/orgs/{project.organization.slug}/plugins")
    assert listing.status_code == 200
    row = next(p for p in listing.json() if p["slug"] == "example-config")
    assert row["execution_mode"] == "auto"
    assert row["runs"] == "in_process"


def test_admin_changes_the_mode_audited(
    config_plugin: Plugin, django_user_model: Any, client: Any
) -> None:
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    url = f"/admin/plugins_core/plugin/{config_plugin.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert "Runs" in page.content.decode() and "in-process" in page.content.decode()
    form = {
        "organization": config_plugin.organization_id,
        "service": config_plugin.service_id,
        "slug": config_plugin.slug,
        "name": "",
        "enabled": "on",
        "execution_mode": "isolated",
        "prefix": "",
        "max_keys": "500",
        "mode": "normal",
    }
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    config_plugin.refresh_from_db()
    assert config_plugin.execution_mode == "isolated"
    event = AuditEvent.objects.get(
        action=AuditEvent.Action.PLUGIN_STATE, plugin_slug="example-config"
    )
    assert event.detail == "execution mode: auto -> isolated"


@override_settings(IMBI_PLUGIN_BREAKER_FAILURES=2, IMBI_PLUGIN_BREAKER_RESET=60)
def test_breaker_opens_after_repeated_failures(
    project: Any, install: Any, bind_type: Any, api: Any
) -> None:
    host.reset_runtime()  # picks up the settings
    plugin = install("hostile-exit", plugin_type="configuration")
    bind_type(plugin, default=True)
    client = api(Role.VIEWER)
    url = f"/api/orgs/{project.organization.slug}/projects/{project.pk}/configuration"
    assert [client.get(url).json()["code"] for _ in range(2)] == ["plugin_crashed"] * 2
    response = client.get(url)
    assert response.status_code == 503
    assert response.json()["code"] == "plugin_circuit_open"
    assert response["Retry-After"] == "60"
    assert host.breaker().state(host.breaker_key(resolve(project, "configuration"))).state == "open"


def test_wizard_test_connection_of_an_untrusted_plugin_runs_isolated(org: Any) -> None:
    from plugins_core.pages import wizard

    healthy = registry.current().get("hostile-healthy")
    result = wizard.test_connection(healthy, org, {}, {}, {})
    assert result.pop("duration_ms") >= 0  # the wizard records how long the test took
    assert result == {"ok": True, "message": "ok", "details": {}}
    import sys

    assert "imbi_plugin_hostile" not in sys.modules  # it ran in a runner, not here
    assert len(host.pool().runners()) == 1


def test_an_upgrade_asking_for_more_permissions_waits_for_an_admin(
    project: Any,
    config_plugin: Plugin,
    bind_type: Any,
    api: Any,
    django_user_model: Any,
    client: Any,
) -> None:
    assert config_plugin.approved_permissions == {
        "network_hosts": ["api.example.com"],
        "storage": True,
    }
    # what an older version declared: no storage, another host
    config_plugin.approved_permissions = {"network_hosts": ["old.example.com"], "storage": False}
    config_plugin.save()
    bind_type(config_plugin, default=True)
    url = f"/api/orgs/{project.organization.slug}/projects/{project.pk}/configuration"
    response = api(Role.VIEWER).get(url)
    assert response.status_code == 503
    assert response.json()["code"] == "plugin_permissions_pending"
    assert response.json()["detail"] == (
        "plugin 'example-config' 1.2.0 asks for permissions an admin has not approved: "
        "network api.example.com, storage"
    )
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    changelist = client.get("/admin/plugins_core/plugin/")
    assert "permissions pending approval" in changelist.content.decode()
    done = client.post(
        "/admin/plugins_core/plugin/",
        {"action": "approve_permissions", "_selected_action": [config_plugin.pk]},
    )
    assert done.status_code == 302
    event = AuditEvent.objects.get(action=AuditEvent.Action.PLUGIN_STATE)
    assert event.detail == (  # the earlier version's host stays approved
        "permissions approved: network old.example.com, api.example.com; storage yes; "
        "project metadata no"
    )
    assert api(Role.VIEWER, username="second").get(url).status_code == 200


def test_host_requests_are_capped_per_call(
    project: Any, config_plugin: Plugin, bind_type: Any
) -> None:
    from imbi_plugin_sdk import PermissionDenied

    from plugins_core.isolation.host import MAX_HOST_REQUESTS, HostRequests
    from plugins_core.serving.storage import DatabaseKeyValueStore

    bind_type(config_plugin, default=True)
    resolved = resolve(project, "configuration", storage_factory=DatabaseKeyValueStore)
    requests = HostRequests(resolved)
    for _ in range(MAX_HOST_REQUESTS):
        requests({"t": "host", "id": 1, "op": "storage.get", "key": "k"})
    with pytest.raises(PermissionDenied, match="more than 1000 host requests in one call"):
        requests({"t": "host", "id": 1, "op": "storage.get", "key": "k"})
    with pytest.raises(PermissionDenied, match="storage requests carry only"):
        HostRequests(resolved)(
            {"t": "host", "id": 1, "op": "storage.get", "key": "k", "plugin_id": 1}
        )


def test_arguments_the_wire_refuses_check_out_no_runner(tmp_path: Any) -> None:
    """A call whose arguments cannot cross the wire fails before a runner is acquired (a
    runner checked out and never released survived ``reset_runtime``)."""
    from datetime import UTC, datetime, timedelta

    from imbi_plugin_local.logs import LocalLogs
    from imbi_plugin_sdk import Credentials, LogQuery
    from imbi_plugin_sdk.testkit import make_context

    from plugins_core.isolation.errors import PluginFailed
    from plugins_core.isolation.testing import isolated

    from .conftest import wait_no_descendants

    context = make_context(project_slug="billing", service_settings={"directory": str(tmp_path)})
    remote = isolated(LocalLogs(context, Credentials()))
    end = datetime.now(UTC)
    with pytest.raises(PluginFailed, match="bucket_count"):  # 502, as in-process mode answers
        remote.histogram(LogQuery(start=end - timedelta(hours=1), end=end), 0)
    assert remote.search(LogQuery(start=end - timedelta(hours=1), end=end)).entries == ()
    host.reset_runtime()
    assert not wait_no_descendants()
