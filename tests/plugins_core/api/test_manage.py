"""The management API: services, write-only credentials, plugins, connection tests, audit,
projects and project types; organization scoping, roles and problem+json on bad input."""

from __future__ import annotations

from typing import Any

import pytest

from imbi.core.models import AuditEvent, Organization, Project, ProjectType, Role
from plugins_core.models import ConnectionCheck, Plugin, ServiceApplication, ThirdPartyService
from tests.plugins_core.conftest import API_TOKEN

pytestmark = pytest.mark.django_db
NEW_TOKEN = "rotated-token-93c1d0aa7e"


@pytest.fixture
def ops(api: Any) -> Any:
    """An API client of an operator: active staff with the admin role (imbi.core.access)."""

    def make(username: str = "boss") -> Any:
        client = api(Role.ADMIN, username=username)
        client.user.is_staff = True
        client.user.save(update_fields=["is_staff"])
        return client

    return make


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def test_projects_and_project_types_are_listed_for_members_only(
    project: Project, project_type: ProjectType, other_org: Organization, api: Any
) -> None:
    viewer = api()
    (listed,) = viewer.get("/api/orgs/acme/projects").json()
    assert listed == {
        "id": project.pk,
        "slug": "billing",
        "name": "Billing",
        "description": "",
        "project_type": "api",
        "owners": [],
    }
    assert viewer.get("/api/orgs/acme/projects?project_type=nope").json() == []
    assert viewer.get(f"/api/orgs/acme/projects/{project.pk}").json()["slug"] == "billing"
    types = viewer.get("/api/orgs/acme/project-types").json()
    assert types == [{"slug": "api", "name": "API", "description": "", "projects": 1}]
    problem(viewer.get("/api/orgs/globex/projects"), 404, "not_found")
    problem(viewer.get("/api/orgs/globex/project-types"), 404, "not_found")
    outsider = api(organization=other_org, username="outsider")
    problem(outsider.get(f"/api/orgs/acme/projects/{project.pk}"), 404, "not_found")
    orgs = outsider.get("/api/orgs").json()
    assert orgs == [{"slug": "globex", "name": "Globex", "role": "viewer"}]


def test_service_crud_is_for_operators_validated_and_audited(
    org: Organization, api: Any, ops: Any
) -> None:
    admin, editor = ops(), api(Role.EDITOR, username="ed")
    body = {"name": "Vendor X", "vendor": "vendorx", "slug": "vx", "settings": {"region": "eu"}}
    problem(editor.post("/api/orgs/acme/services", body, format="json"), 403, "permission_denied")
    created = admin.post("/api/orgs/acme/services", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["settings"] == {"region": "eu"}
    problem(admin.post("/api/orgs/acme/services", body, format="json"), 409, "conflict")
    bad = problem(
        admin.patch("/api/orgs/acme/services/vx", {"settings": {"bad key": 1}}, format="json"),
        400,
        "invalid_input",
    )
    assert "settings" in bad["errors"]
    assert ThirdPartyService.objects.get(slug="vx").settings == {"region": "eu"}
    renamed = admin.patch("/api/orgs/acme/services/vx", {"name": "Vendor Y"}, format="json")
    assert renamed.json()["name"] == "Vendor Y"
    assert editor.get("/api/orgs/acme/services/vx").json()["name"] == "Vendor Y"
    problem(editor.delete("/api/orgs/acme/services/vx"), 403, "permission_denied")
    assert admin.delete("/api/orgs/acme/services/vx").status_code == 204
    problem(admin.get("/api/orgs/acme/services/vx"), 404, "not_found")
    details = list(
        AuditEvent.objects.filter(action="service.change")
        .order_by("id")
        .values_list("actor_name", "detail")
    )
    assert details == [
        ("boss", "created service vx"),
        ("boss", "service vx: changed name"),
        ("boss", "deleted service vx"),
    ]


def test_credentials_are_write_only(
    org: Organization, service: ThirdPartyService, config_plugin: Plugin, api: Any, ops: Any
) -> None:
    admin = ops()
    url = "/api/orgs/acme/services/example/credentials"
    read = admin.get(url)
    assert read.json()["set"] == ["api_token"]
    assert read.json()["fields"] == [
        {"name": "api_token", "label": "API token", "required": True, "secret": True, "set": True}
    ]
    assert API_TOKEN.encode() not in read.content
    assert API_TOKEN.encode() not in admin.get("/api/orgs/acme/services/example").content
    problem(
        api().patch(url, {"credentials": {"api_token": "x"}}, format="json"),
        403,
        "permission_denied",
    )
    unknown = problem(
        admin.patch(url, {"credentials": {"password": "x"}}, format="json"), 400, "invalid_input"
    )
    assert "password" in unknown["errors"]
    changed = admin.patch(url, {"credentials": {"api_token": NEW_TOKEN}}, format="json")
    assert changed.json()["changed"] == ["api_token"]
    assert NEW_TOKEN.encode() not in changed.content
    assert ServiceApplication.objects.get(service=service).credentials == {"api_token": NEW_TOKEN}
    required = problem(
        admin.patch(url, {"credentials": {"api_token": None}}, format="json"), 400, "invalid_input"
    )
    assert "api_token" in required["errors"]
    assert admin.delete(url).status_code == 400  # clearing a required credential is refused
    events = AuditEvent.objects.filter(action="credentials.set")
    assert [e.detail for e in events] == ["service example: api_token"]
    assert NEW_TOKEN not in str(list(AuditEvent.objects.values()))


def test_a_rejected_token_makes_the_badge_connection_failed_everywhere_in_the_api(
    project: Project,
    service: ThirdPartyService,
    config_plugin: Plugin,
    bind_type: Any,
    api: Any,
    ops: Any,
) -> None:
    bind_type(config_plugin, default=True)
    admin = ops()
    admin.patch(
        "/api/orgs/acme/services/example/credentials",
        {"credentials": {"api_token": "bad"}},
        format="json",
    )
    plugin_url = "/api/orgs/acme/plugins/example-config"
    assert admin.get(plugin_url).json()["health"]["status"] == "untested"
    problem(admin.get(f"{plugin_url}/connection-test"), 404, "not_tested")
    test = admin.post(f"{plugin_url}/connection-test", {}, format="json").json()
    assert (test["ok"], test["status"], test["message"]) == (
        False,
        "failed",
        "the API token was rejected",
    )
    assert test["duration_ms"] >= 0 and test["trigger"] == "api"
    assert admin.get(f"{plugin_url}/connection-test").json()["tested_at"] == test["tested_at"]
    health = admin.get(plugin_url).json()["health"]
    assert (health["status"], health["reason"]) == ("connection_failed", test["message"])
    (listed,) = admin.get("/api/orgs/acme/plugins").json()
    assert listed["status"] == "connection_failed"
    tabs = api().get(f"/api/orgs/acme/projects/{project.pk}/tabs").json()["tabs"]
    assert [s["status"] for t in tabs for s in t["sources"]] == ["connection_failed"]
    # Rotating the credential forgets the failed test; a new test turns the badge ok.
    admin.patch(
        "/api/orgs/acme/services/example/credentials",
        {"credentials": {"api_token": NEW_TOKEN}},
        format="json",
    )
    assert admin.get(plugin_url).json()["health"]["status"] == "untested"
    assert admin.post(f"{plugin_url}/connection-test", {}, format="json").json()["ok"] is True
    assert admin.get(plugin_url).json()["health"]["status"] == "ok"
    assert AuditEvent.objects.filter(action="plugin.test").count() == 2


def test_missing_credentials_are_not_ok(
    project: Project, org: Organization, install: Any, bind_type: Any, api: Any, ops: Any
) -> None:
    bare = ThirdPartyService.objects.create(organization=org, vendor="x", name="X", slug="x")
    plugin = install("example-config", "cfg", svc=bare)
    bind_type(plugin, default=True)
    (listed,) = api().get("/api/orgs/acme/plugins").json()
    assert listed["status"] == "credentials_missing"
    tabs = api(username="v2").get(f"/api/orgs/acme/projects/{project.pk}/tabs").json()
    assert tabs["tabs"][0]["sources"][0]["status"] == "credentials_missing"
    check = ops().post("/api/orgs/acme/plugins/cfg/connection-test", {}, format="json")
    assert check.json()["message"].startswith("credentials_missing:")


def test_plugin_enable_disable_and_options(
    org: Organization, config_plugin: Plugin, api: Any, ops: Any
) -> None:
    admin = ops()
    url = "/api/orgs/acme/plugins/example-config"
    problem(api().patch(url, {"enabled": False}, format="json"), 403, "permission_denied")
    off = admin.patch(url, {"enabled": False}, format="json").json()
    assert (off["enabled"], off["status"]) == (False, "plugin_disabled")
    on = admin.patch(url, {"enabled": True, "options": {"prefix": "app/"}}, format="json")
    assert on.json()["enabled"] is True and on.json()["options"] == {"prefix": "app/"}
    bad = problem(
        admin.patch(url, {"options": {"no_such_option": 1}}, format="json"), 400, "invalid_input"
    )
    assert list(bad["errors"]) == ["options.no_such_option"]
    assert Plugin.objects.get(pk=config_plugin.pk).options == {"prefix": "app/"}
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["plugin.state", "plugin.change", "plugin.state"]


def test_audit_events_are_filtered_paginated_and_for_operators(
    org: Organization, other_org: Organization, api: Any, ops: Any
) -> None:
    from imbi.core import audit

    for i in range(5):
        audit.record("config.set", organization=org, key=f"K{i}")
    audit.record("config.delete", organization=org, key="GONE")
    audit.record("config.set", organization=other_org, key="THEIRS")
    admin = ops()
    problem(api().get("/api/orgs/acme/audit-events"), 403, "permission_denied")
    first = admin.get("/api/orgs/acme/audit-events?action=config.set&limit=2").json()
    assert [e["key"] for e in first["events"]] == ["K4", "K3"]
    second = admin.get(
        f"/api/orgs/acme/audit-events?action=config.set&limit=2&before={first['next_before']}"
    ).json()
    assert [e["key"] for e in second["events"]] == ["K2", "K1"]
    last = admin.get(
        f"/api/orgs/acme/audit-events?action=config.set&limit=2&before={second['next_before']}"
    ).json()
    assert [e["key"] for e in last["events"]] == ["K0"] and last["next_before"] is None
    everything = admin.get("/api/orgs/acme/audit-events").json()["events"]
    assert "THEIRS" not in {e["key"] for e in everything} and len(everything) == 6
    problem(admin.get("/api/orgs/acme/audit-events?action=nope"), 400, "invalid_input")


def test_periodic_check_records_every_enabled_plugin(
    config_plugin: Plugin, install: Any, service: ThirdPartyService
) -> None:
    from plugins_core.serving import health

    install("example-static", "off", enabled=False)
    assert health.check_all() == {"ok": 1, "failed": 0, "loading": 0}
    check = ConnectionCheck.objects.get()
    assert (check.plugin_id, check.trigger) == (config_plugin.pk, "periodic")
    assert not AuditEvent.objects.filter(action="plugin.test").exists()


def test_an_org_admin_who_is_not_staff_cannot_manage(
    org: Organization, service: ThirdPartyService, config_plugin: Plugin, api: Any
) -> None:
    admin = api(Role.ADMIN, username="not-staff")
    for response in (
        admin.post(
            "/api/orgs/acme/services", {"name": "n", "vendor": "v", "slug": "s"}, format="json"
        ),
        admin.patch(
            "/api/orgs/acme/services/example/credentials",
            {"credentials": {"api_token": "x"}},
            format="json",
        ),
        admin.patch("/api/orgs/acme/plugins/example-config", {"enabled": False}, format="json"),
        admin.post("/api/orgs/acme/plugins/example-config/connection-test", {}, format="json"),
        admin.get("/api/orgs/acme/audit-events"),
    ):
        problem(response, 403, "permission_denied")
    assert Plugin.objects.get(pk=config_plugin.pk).enabled is True
