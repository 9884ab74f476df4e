"""The tab REST API end to end on PostgreSQL with the example plugin."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient

from imbi.core.models import AuditEvent, Organization, Project, ProjectType, Role
from plugins_core.models import Plugin, ProjectPlugin, ProjectTypePlugin
from plugins_core.serving import health
from tests.plugins_core.conftest import API_TOKEN

pytestmark = pytest.mark.django_db


def url(project: Project, suffix: str = "") -> str:
    return f"/api/orgs/{project.organization.slug}/projects/{project.pk}/{suffix}"


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code and body["status"] == status
    return body


@pytest.fixture
def configured(project: Project, config_plugin: Any, bind_type: Any) -> Project:
    bind_type(config_plugin, default=True, search_template="${org}/${project}/")
    return project


def put(
    client: APIClient,
    project: Project,
    key: str,
    value: Any,
    data_type: str = "string",
    secret: bool = False,
    **params: str,
) -> Any:
    query = "?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else ""
    return client.put(
        url(project, f"configuration/keys/{key}{query}"),
        {"data_type": data_type, "value": value, "secret": secret},
        format="json",
    )


def test_configuration_round_trip_with_masking_and_audit(configured: Project, api: Any) -> None:
    editor = api(Role.EDITOR, secrets=False)
    assert put(editor, configured, "DB_HOST", "db.internal").status_code == 200
    assert put(editor, configured, "DB_PORT", 5432, "number").status_code == 200
    assert (
        put(editor, configured, "DB_PASSWORD", "hunter2-secret", "secret", True).status_code == 200
    )

    keys = editor.get(url(configured, "configuration")).json()
    assert keys["source"]["slug"] == "example-config"
    assert [(k["key"], k["data_type"], k["secret"]) for k in keys["keys"]] == [
        ("DB_HOST", "string", False),
        ("DB_PASSWORD", "secret", True),
        ("DB_PORT", "number", False),
    ]

    values = editor.get(url(configured, "configuration/values")).json()["values"]
    by_key = {v["key"]: v for v in values}
    assert by_key["DB_PORT"]["value"] == 5432
    assert by_key["DB_PASSWORD"] == {**by_key["DB_PASSWORD"], "value": None, "masked": True}
    only = editor.get(url(configured, "configuration/values?keys=DB_HOST,MISSING")).json()
    assert [v["key"] for v in only["values"]] == ["DB_HOST"]

    # Revealing needs the read-secrets grant.
    body = assert_problem(
        editor.get(url(configured, "configuration/values?reveal=true")), 403, "permission_denied"
    )
    assert "read-secrets" in body["detail"]
    reader = api(Role.VIEWER, secrets=True, username="reader")
    revealed = reader.get(url(configured, "configuration/values?reveal=true")).json()
    assert {v["key"]: v["value"] for v in revealed["values"]}["DB_PASSWORD"] == "hunter2-secret"

    events = list(AuditEvent.objects.order_by("id").values_list("action", "key", "actor_name"))
    assert events == [
        ("config.set", "DB_HOST", editor.user.username),
        ("config.set", "DB_PORT", editor.user.username),
        ("config.set", "DB_PASSWORD", editor.user.username),
        ("secret.read", "DB_PASSWORD", "reader"),
    ]
    for event in AuditEvent.objects.all():
        assert "hunter2" not in f"{event.key} {event.detail}"


def test_keys_with_slashes_and_idempotent_delete(configured: Project, api: Any) -> None:
    editor = api(Role.EDITOR)
    assert put(editor, configured, "app/feature/flag", True, "boolean").status_code == 200
    assert editor.get(url(configured, "configuration")).json()["keys"][0]["key"] == (
        "app/feature/flag"
    )
    for _ in range(2):
        assert (
            editor.delete(url(configured, "configuration/keys/app/feature/flag")).status_code == 204
        )
    assert editor.get(url(configured, "configuration")).json()["keys"] == []


def test_viewers_cannot_write(configured: Project, api: Any) -> None:
    viewer = api(Role.VIEWER)
    assert_problem(put(viewer, configured, "K", "v"), 403, "permission_denied")
    assert_problem(viewer.delete(url(configured, "configuration/keys/K")), 403, "permission_denied")
    assert not AuditEvent.objects.exists()


def test_bad_write_bodies_are_field_errors(configured: Project, api: Any) -> None:
    editor = api(Role.EDITOR)
    body = assert_problem(
        put(editor, configured, "K", "not-a-number", "number"), 400, "invalid_input"
    )
    assert "value" in body["errors"]
    body = assert_problem(
        editor.put(url(configured, "configuration/keys/K"), {"value": 1}, format="json"),
        400,
        "invalid_input",
    )
    assert "data_type" in body["errors"]
    assert_problem(
        editor.put(
            url(configured, "configuration/keys/K"), "{not json", content_type="application/json"
        ),
        400,
        "malformed_request",
    )


def test_plugin_errors_map_to_problems(
    project: Project, install: Any, bind_type: Any, api: Any
) -> None:
    bind_type(install("example-config", "flaky", options={"mode": "flaky"}))
    bind_type(install("example-config", "denied", options={"mode": "denied"}), default=True)
    client = api()
    response = client.get(url(project, "configuration?source=flaky"))
    body = assert_problem(response, 503, "upstream_unavailable")
    assert response["Retry-After"] == "7" and body["retry_after"] == 7
    assert_problem(client.get(url(project, "configuration")), 502, "credentials_invalid")


def test_resolution_branches_over_http(
    project: Project, install: Any, bind_type: Any, bind_project: Any, api: Any, org: Organization
) -> None:
    client = api()
    assert_problem(client.get(url(project, "configuration")), 404, "no_plugin_bound")
    bind_type(install("example-config", "a"))
    bind_type(install("example-static", "b"))
    body = assert_problem(client.get(url(project, "configuration")), 400, "ambiguous_source")
    assert body["candidates"] == ["a", "b"]
    assert client.get(url(project, "configuration?source=b")).status_code == 200
    assert_problem(client.get(url(project, "configuration?source=zzz")), 404, "source_not_bound")
    bind_project(install("example-future", "future"), default=True)
    body = assert_problem(client.get(url(project, "configuration")), 503, "plugin_incompatible")
    assert "api 2.0" in body["detail"]
    disabled = install("example-static", "off", enabled=False)
    bind_type(disabled)
    assert_problem(client.get(url(project, "configuration?source=off")), 503, "plugin_disabled")


def test_missing_credentials_over_http(
    project: Project, org: Organization, install: Any, bind_type: Any, api: Any
) -> None:
    from plugins_core.models import ThirdPartyService

    bare = ThirdPartyService.objects.create(
        organization=org, vendor="example", identity="x", name="Bare", slug="bare"
    )
    bind_type(install("example-config", svc=bare))
    body = assert_problem(api().get(url(project, "configuration")), 503, "credentials_missing")
    assert body["missing"] == ["api_token"]


def test_another_organization_is_404_never_data(
    configured: Project, api: Any, other_org: Organization
) -> None:
    outsider = api(Role.ADMIN, organization=other_org, username="outsider")
    for path in ("configuration", "configuration/values", "logs", "tabs", "bindings"):
        assert_problem(outsider.get(url(configured, path)), 404, "not_found")
    # The project's id under the other org's slug is not found either.
    member = api(Role.ADMIN, username="member")
    foreign_url = f"/api/orgs/{other_org.slug}/projects/{configured.pk}/configuration"
    assert_problem(member.get(foreign_url), 404, "not_found")
    assert_problem(
        outsider.get(f"/api/orgs/{configured.organization.slug}/plugins"), 404, "not_found"
    )


def test_unauthenticated_is_401_problem(configured: Project) -> None:
    assert_problem(APIClient().get(url(configured, "configuration")), 401, "not_authenticated")


def test_logs_filters_levels_and_cursor_paging(
    project: Project, logs_plugin: Any, bind_type: Any, api: Any
) -> None:
    bind_type(logs_plugin)
    client = api()
    end = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    start = end - timedelta(hours=1)
    base = f"logs?start={start.isoformat()}&end={end.isoformat()}".replace("+", "%2B")
    everything = client.get(url(project, base + "&limit=1000")).json()
    assert len(everything["entries"]) == 61
    seen: list[str] = []
    cursor = ""
    for _ in range(10):
        page = client.get(url(project, base + f"&limit=25{cursor}")).json()
        seen += [e["timestamp"] for e in page["entries"]]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == [e["timestamp"] for e in everything["entries"]]
    # A value containing colons parses unambiguously: field:op:value splits twice only.
    flt = client.get(
        url(
            project,
            base + "&filter=url:starts_with:http://svc:8080/v1/items/3&level=error&level=info",
        )
    ).json()
    assert flt["entries"]
    for entry in flt["entries"]:
        assert entry["fields"]["url"].startswith("http://svc:8080/v1/items/3")
        assert entry["level"] in {"error", "info"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("filter=bad field:eq:x", "filter"),
        ("filter=path:like:x", "filter"),
        ("filter=path:eq", "filter"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("level=loud", "level"),
        ("start=yesterday", "start"),
    ],
)
def test_bad_log_queries_are_400_with_the_field(
    project: Project, logs_plugin: Any, bind_type: Any, api: Any, query: str, field: str
) -> None:
    bind_type(logs_plugin)
    body = assert_problem(api().get(url(project, f"logs?{query}")), 400, "invalid_input")
    assert field in body["errors"]


def test_end_before_start_is_400(
    project: Project, logs_plugin: Any, bind_type: Any, api: Any
) -> None:
    bind_type(logs_plugin)
    assert_problem(
        api().get(url(project, "logs?start=2026-01-02T00:00:00Z&end=2026-01-01T00:00:00Z")),
        400,
        "invalid_input",
    )


def test_tabs_show_sources_and_status(
    project: Project, install: Any, bind_type: Any, bind_project: Any, api: Any
) -> None:
    cfg = install("example-config", "cfg")
    bind_type(cfg, default=True)
    bind_project(install("example-broken", "broken"))
    bind_type(install("example-logs"))
    client = api()
    tabs = {t["tab"]: t["sources"] for t in client.get(url(project, "tabs")).json()["tabs"]}
    assert [(s["slug"], s["selected"], s["status"]) for s in tabs["configuration"]] == [
        ("broken", False, "plugin_unavailable"),
        ("cfg", True, "untested"),
    ]
    health.check_connection(cfg, trigger="api")
    tabs = {t["tab"]: t["sources"] for t in client.get(url(project, "tabs")).json()["tabs"]}
    assert [(s["slug"], s["status"]) for s in tabs["configuration"]] == [
        ("broken", "plugin_unavailable"),
        ("cfg", "ok"),
    ]
    assert [(s["slug"], s["scope"]) for s in tabs["logs"]] == [("example-logs", "project_type")]


def test_project_owner_binds_own_project_only(
    project: Project, project_type: ProjectType, org: Organization, config_plugin: Any, api: Any
) -> None:
    owner = api(Role.OWNER)
    project.owners.add(owner.user)
    other = Project.objects.create(
        organization=org, project_type=project_type, slug="other", name="Other"
    )
    created = owner.post(
        url(project, "bindings"),
        {
            "plugin": "example-config",
            "default": True,
            "search_template": "${project}/",
            "options": {"prefix": "x"},
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["tab"] == "configuration"
    assert_problem(
        owner.post(url(other, "bindings"), {"plugin": "example-config"}, format="json"),
        403,
        "permission_denied",
    )
    assert not ProjectPlugin.objects.filter(project=other).exists()
    viewer = api(Role.VIEWER, username="v")
    assert_problem(
        viewer.post(url(project, "bindings"), {"plugin": "example-config"}, format="json"),
        403,
        "permission_denied",
    )
    binding_url = url(project, f"bindings/{created.json()['id']}")
    assert owner.patch(binding_url, {"options": {"max_keys": 5}}, format="json").json()[
        "options"
    ] == {"max_keys": 5}
    assert owner.delete(binding_url).status_code == 204
    assert AuditEvent.objects.filter(action="binding.change").count() == 3


def test_binding_validation_at_save_time(
    project: Project, project_type: ProjectType, config_plugin: Any, install: Any, api: Any
) -> None:
    admin = api(Role.ADMIN)
    type_url = f"/api/orgs/{project.organization.slug}/project-types/{project_type.slug}/bindings"
    body = assert_problem(
        admin.post(
            type_url,
            {"plugin": "example-config", "search_template": "/${password}/"},
            format="json",
        ),
        400,
        "invalid_input",
    )
    assert "unknown variable ${password}" in body["errors"]["search_template"]
    body = assert_problem(
        admin.post(
            type_url,
            {"plugin": "example-config", "options": {"max_keys": "many", "nope": 1}},
            format="json",
        ),
        400,
        "invalid_input",
    )
    assert {"options.max_keys", "options.nope"} <= set(body["errors"])
    body = assert_problem(
        admin.post(type_url, {"plugin": "example-config", "tab": "logs"}, format="json"),
        400,
        "invalid_input",
    )
    assert "tab" in body["errors"]
    body = assert_problem(
        admin.post(type_url, {"plugin": "not-installed"}, format="json"), 400, "invalid_input"
    )
    assert "plugin" in body["errors"]
    assert (
        admin.post(
            type_url, {"plugin": "example-config", "default": True}, format="json"
        ).status_code
        == 201
    )
    install("example-static")
    body = assert_problem(
        admin.post(type_url, {"plugin": "example-static", "default": True}, format="json"),
        409,
        "default_exists",
    )
    assert "default" in body["errors"]
    assert body["current_default"] == "example-config"
    assert "example-config" in body["detail"] and "replace_default" in body["detail"]
    assert list(ProjectTypePlugin.objects.filter(project_type=project_type)) == [
        ProjectTypePlugin.objects.get(plugin__slug="example-config", default=True)
    ]
    # Binding the same plugin twice is a plain conflict, not a 500.
    assert_problem(
        admin.post(type_url, {"plugin": "example-config"}, format="json"), 409, "conflict"
    )
    editor = api(Role.EDITOR, username="ed")
    assert_problem(
        editor.post(type_url, {"plugin": "example-static"}, format="json"), 403, "permission_denied"
    )


def test_registry_and_installed_plugins(
    project: Project, config_plugin: Any, install: Any, api: Any
) -> None:
    install("example-future")
    client = api()
    registry = client.get("/api/plugins").json()
    statuses = {e["name"]: e["status"] for e in registry["entries"]}
    assert statuses["example-config"] == "loaded"
    assert statuses["example-broken"] == "import_failed"
    assert statuses["example-future"] == "incompatible"
    installed = {
        p["slug"]: p for p in client.get(f"/api/orgs/{project.organization.slug}/plugins").json()
    }
    assert installed["example-config"]["status"] == "untested"
    assert installed["example-future"]["status"] == "plugin_incompatible"


def test_no_secret_in_any_response_or_log(
    configured: Project, api: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    editor = api(Role.EDITOR)
    put(editor, configured, "TOKEN", "s3cr3t-value-xyz", "secret", True)
    bodies = [
        editor.get(url(configured, "configuration")).content,
        editor.get(url(configured, "configuration/values")).content,
        editor.get(url(configured, "tabs")).content,
        editor.get(f"/api/orgs/{configured.organization.slug}/plugins").content,
        editor.get("/api/plugins").content,
    ]
    for body in bodies:
        assert b"s3cr3t-value-xyz" not in body
        assert API_TOKEN.encode() not in body
    assert "s3cr3t-value-xyz" not in caplog.text and API_TOKEN not in caplog.text


def test_query_counts_stay_constant_and_changes_invalidate_the_plan(
    project: Project, install: Any, bind_type: Any, api: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for index in range(30):
        bind_type(
            install("example-static", f"s{index:02}", options={"values": {"K": "v"}}),
            default=index == 0,
        )
    admin = api(Role.ADMIN, username="boss")
    values_url = url(project, "configuration/values")
    with CaptureQueriesContext(connection) as cold:
        assert admin.get(values_url).json()["source"]["slug"] == "s00"
    with CaptureQueriesContext(connection) as warm:
        assert admin.get(values_url).json()["source"]["slug"] == "s00"
    # the token, its user, the project and the grant in one query (imbi.api.authentication)
    # cold: that query, the candidates, the chosen binding; warm: that query (plan cached)
    assert len(cold) == 3, [q["sql"] for q in cold]
    assert len(warm) == 1, [q["sql"] for q in warm]
    # A binding change through the API bumps the organization's version: the next request
    # resolves again and sees it, in this process or any other.
    created = admin.post(
        url(project, "bindings"), {"plugin": "s07", "default": True}, format="json"
    )
    assert created.status_code == 201, created.content
    assert admin.get(values_url).json()["source"]["slug"] == "s07"
    from plugins_core.models import Plugin

    plugin = Plugin.objects.get(slug="s07")
    plugin.enabled = False
    plugin.save()
    assert_problem(admin.get(values_url), 503, "plugin_disabled")


def test_install_from_template_over_the_api(org: Organization, api: Any) -> None:
    admin = api(Role.ADMIN, username="installer")
    install_url = f"/api/orgs/{org.slug}/plugins/install"
    # An admin who is not staff is not an operator: installing is refused, as in the wizard.
    body = assert_problem(
        admin.post(install_url, {"entry_point": "example-config"}, format="json"),
        403,
        "permission_denied",
    )
    assert "operator" in body["detail"]
    assert not Plugin.objects.filter(organization=org).exists()
    admin.user.is_staff = True
    admin.user.save()
    first = admin.post(install_url, {"entry_point": "example-config"}, format="json")
    assert first.status_code == 201, first.content
    body = first.json()
    assert sorted(body["plugins"]) == ["example-config", "example-logs"]
    assert body["credentials_needed"] == ["api_token"]
    again = admin.post(install_url, {"entry_point": "example-logs"}, format="json")
    assert again.status_code == 200 and again.json()["created_plugins"] == []
    assert again.json()["credentials_needed"] == ["api_token"]
    # once the token is set, installing again does not ask for it
    creds = f"/api/orgs/{org.slug}/services/{body['service']}/credentials"
    stored = admin.patch(creds, {"credentials": {"api_token": "t0ken"}}, format="json")
    assert stored.status_code == 200, stored.content
    third = admin.post(install_url, {"entry_point": "example-logs"}, format="json")
    assert third.status_code == 200 and third.json()["credentials_needed"] == []
    body = assert_problem(
        admin.post(install_url, {"entry_point": "example-static"}, format="json"),
        400,
        "invalid_input",
    )
    assert "entry_point" in body["errors"]
    assert_problem(
        admin.post(install_url, {"entry_point": "example-broken"}, format="json"),
        400,
        "invalid_input",
    )
    editor = api(Role.EDITOR, username="not-admin")
    editor.user.is_staff = True  # staff without the admin role is not an operator either
    editor.user.save()
    assert_problem(
        editor.post(install_url, {"entry_point": "example-config"}, format="json"),
        403,
        "permission_denied",
    )


def test_plugin_bugs_are_502_and_logs_redact_credentials(
    project: Project, install: Any, bind_type: Any, api: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bind_type(install("example-config", "crashy", options={"mode": "crash"}))
    bind_type(install("example-config", "garbage", options={"mode": "garbage"}))
    client = api()
    body = assert_problem(
        client.get(url(project, "configuration?source=crashy")), 502, "plugin_failed"
    )
    assert API_TOKEN not in json.dumps(body)
    assert "RuntimeError" in caplog.text and "boom while using token ***" in caplog.text
    assert API_TOKEN not in caplog.text
    assert_problem(client.get(url(project, "configuration?source=garbage")), 502, "plugin_failed")


def test_replace_default_moves_the_default_in_one_audited_step(
    project: Project, project_type: ProjectType, config_plugin: Any, install: Any, api: Any
) -> None:
    """docs/api.md: a second default is 409 default_exists; replace_default makes the new
    binding the default and unsets the old one in the same transaction, for project types
    and projects alike, on create and on change."""
    admin = api(Role.ADMIN)
    type_url = f"/api/orgs/{project.organization.slug}/project-types/{project_type.slug}/bindings"
    first = admin.post(type_url, {"plugin": "example-config", "default": True}, format="json")
    assert first.status_code == 201, first.content
    install("example-static")
    audits = AuditEvent.objects.count()
    replaced = admin.post(
        type_url,
        {"plugin": "example-static", "default": True, "replace_default": True},
        format="json",
    )
    assert replaced.status_code == 201, replaced.content
    defaults = ProjectTypePlugin.objects.filter(project_type=project_type, default=True)
    assert [b.plugin.slug for b in defaults] == ["example-static"]
    assert AuditEvent.objects.count() == audits + 2  # the old default unset, the new one bound

    # Project bindings: on change too (PATCH default=true).
    one = admin.post(
        url(project, "bindings"), {"plugin": "example-config", "default": True}, format="json"
    )
    two = admin.post(url(project, "bindings"), {"plugin": "example-static"}, format="json")
    assert one.status_code == 201 and two.status_code == 201, (one.content, two.content)
    two_url = url(project, f"bindings/{two.json()['id']}")
    body = assert_problem(
        admin.patch(two_url, {"default": True}, format="json"), 409, "default_exists"
    )
    assert body["current_default"] == "example-config"
    assert ProjectPlugin.objects.get(pk=two.json()["id"]).default is False
    changed = admin.patch(two_url, {"default": True, "replace_default": True}, format="json")
    assert changed.status_code == 200, changed.content
    assert [b.plugin.slug for b in ProjectPlugin.objects.filter(project=project, default=True)] == [
        "example-static"
    ]


def test_the_joined_token_lookup_refuses_revoked_tokens_and_hides_other_projects(
    project: Project, api: Any
) -> None:
    """A tab request reads the token and the project in one query: a deleted token or an
    inactive user is refused on the next request, a missing project is 404 as before."""
    from rest_framework.authtoken.models import Token

    viewer = api(Role.VIEWER, username="joined")
    keys_url = url(project, "tabs")
    assert viewer.get(keys_url).status_code == 200, viewer.get(keys_url).content
    assert_problem(
        viewer.get(f"/api/orgs/{project.organization.slug}/projects/{project.pk + 999}/tabs"),
        404,
        "not_found",
    )
    assert_problem(viewer.get(f"/api/orgs/nope/projects/{project.pk}/tabs"), 404, "not_found")
    viewer.user.is_active = False
    viewer.user.save()
    assert viewer.get(keys_url).status_code in (401, 404)  # as before the joined lookup
    viewer.user.is_active = True
    viewer.user.save()
    Token.objects.filter(user=viewer.user).delete()
    assert viewer.get(keys_url).status_code == 401
