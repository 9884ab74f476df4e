"""``seed_demo`` installs the built-in plugins and their data; the tabs then serve it."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from imbi_plugin_sdk import LogQuery

from imbi.core.access import Grant
from imbi.core.models import Organization, Project, ProjectType, Role
from plugins_core import registry
from plugins_core.models import (
    Plugin,
    PluginStorage,
    ProjectTypePlugin,
    ServiceApplication,
    ThirdPartyService,
)
from plugins_core.provisioning.demo import LOG_LINES, seed_plugins
from plugins_core.serving import tabs
from plugins_core.serving.resolution import resolve
from plugins_core.serving.runner import default_runner
from plugins_core.serving.storage import DatabaseKeyValueStore

pytestmark = pytest.mark.django_db

VIEWER = Grant(role=Role.VIEWER, read_secrets=False)


@pytest.fixture
def data_dir(settings: Any, tmp_path: Path) -> Path:
    settings.DATA_DIR = tmp_path
    return tmp_path


def counts() -> tuple[int, ...]:
    return tuple(
        model.objects.count()
        for model in (ThirdPartyService, Plugin, ProjectTypePlugin, PluginStorage)
    )


def test_the_local_plugins_are_loaded() -> None:
    for name in ("local-config", "local-logs"):
        entry = registry.current().get(name)
        assert entry is not None and entry.ok, "pip install -e catalog/local"


def test_seed_demo_installs_binds_and_fills_the_local_plugins(data_dir: Path) -> None:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert "Demo plugins: service 'imbi-local' (created)" in out.getvalue()

    org = Organization.objects.get(slug="demo")
    service = ThirdPartyService.objects.get(organization=org, vendor="imbi-local")
    assert service.settings["directory"] == str(data_dir / "demo-logs")
    assert service.managed_by_manifest and service.icon.startswith("<svg")
    assert not ServiceApplication.objects.filter(service=service).exists()
    plugins = {p.handler: p for p in Plugin.objects.filter(service=service)}
    assert set(plugins) == {"local-config", "local-logs"}
    for project_type in ProjectType.objects.filter(organization=org):
        bindings = {
            b.plugin.handler: b for b in ProjectTypePlugin.objects.filter(project_type=project_type)
        }
        assert bindings["local-config"].default and bindings["local-logs"].default
        assert bindings["local-config"].search_template == "${org}/${project}/"
        assert bindings["local-logs"].search_template == "${project}"

    project = Project.objects.get(organization=org, slug="billing-api")
    _, keys = tabs.list_keys(project, VIEWER, None)
    assert {k.key for k in keys} >= {
        "LOG_LEVEL",
        "HTTP_PORT",
        "FEATURE_NEW_CHECKOUT",
        "RETRY_POLICY",
        "DATABASE_PASSWORD",
    }
    _, values = tabs.get_values(project, VIEWER, None, None, None)
    by_key = {v.key: v for v in values}
    assert by_key["HTTP_PORT"].value == 8080
    assert by_key["RETRY_POLICY"].value == {"attempts": 3, "backoff_ms": [100, 400, 1600]}
    assert by_key["DATABASE_PASSWORD"].secret and by_key["DATABASE_PASSWORD"].value is None

    log_file = data_dir / "demo-logs" / "billing-api.jsonl"
    assert len(log_file.read_text().splitlines()) == LOG_LINES
    _, result = tabs.search_logs(project, VIEWER, None, LogQuery.ending_now(limit=1000))
    assert len(result.entries) > 50 and result.warnings == ()
    assert {"path", "status", "duration_ms", "request_id"} <= set(result.entries[0].fields)
    assert {e.level.value for e in result.entries if e.level} >= {"info", "warning", "error"}


def test_every_demo_project_has_its_own_data(data_dir: Path) -> None:
    call_command("seed_demo", stdout=io.StringIO())
    secrets_seen = set()
    for project in Project.objects.filter(organization__slug="demo"):
        resolved = resolve(project, "configuration", storage_factory=DatabaseKeyValueStore)
        values = {v.key: v.value for v in default_runner().call(resolved, "get_values", None)}
        assert values["SERVICE_NAME"] == project.slug
        secrets_seen.add(values["DATABASE_PASSWORD"])
        logs = resolve(project, "logs")
        entries = default_runner().call(logs, "search", LogQuery.ending_now()).entries
        assert entries and all(e.fields["service"] == project.slug for e in entries)
    assert len(secrets_seen) == Project.objects.filter(organization__slug="demo").count()


def test_running_twice_creates_nothing_twice_and_keeps_values(data_dir: Path) -> None:
    call_command("seed_demo", stdout=io.StringIO())
    before = counts()
    org = Organization.objects.get(slug="demo")
    stored = {row.key: row.value for row in PluginStorage.objects.all()}

    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert counts() == before
    assert {row.key: row.value for row in PluginStorage.objects.all()} == stored
    assert "(present)" in out.getvalue() and "0 binding(s) added" in out.getvalue()
    assert "0 configuration value(s) written" in out.getvalue()
    log_file = data_dir / "demo-logs" / "billing-api.jsonl"
    assert len(log_file.read_text().splitlines()) == LOG_LINES  # rewritten, not appended
    assert ThirdPartyService.objects.get(organization=org, vendor="imbi-local").settings[
        "directory"
    ] == str(data_dir / "demo-logs")


def test_existing_defaults_and_edits_are_respected(
    data_dir: Path, org: Organization, project: Project
) -> None:
    """An org that already has a default configuration source keeps it."""
    other = ThirdPartyService.objects.create(organization=org, vendor="x", name="X", slug="x")
    mine = Plugin.objects.create(
        organization=org,
        service=other,
        slug="mine",
        plugin_type="configuration",
        handler="example-static",
    )
    ProjectTypePlugin.objects.create(
        project_type=project.project_type, plugin=mine, tab="configuration", default=True
    )
    seed_plugins(org, stdout=io.StringIO())
    local = ProjectTypePlugin.objects.get(
        project_type=project.project_type, plugin__handler="local-config"
    )
    assert not local.default
    store = DatabaseKeyValueStore(local.plugin.pk)
    key = f"{org.slug}/{project.slug}/LOG_LEVEL"
    store.set(
        key,
        json.dumps(
            {
                "data_type": "string",
                "value": "debug",
                "secret": False,
                "modified": "2025-01-01T00:00:00+00:00",
            }
        ),
    )
    seed_plugins(org, stdout=io.StringIO())
    assert json.loads(store.get(key) or "{}")["value"] == "debug"
