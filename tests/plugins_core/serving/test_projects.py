"""Project metadata for plugins (``plugins_core.serving.projects``, contract 1.2): the host's
reader,
scoped to the calling binding's organization, in-process and through the isolated runner's
``project.*`` host requests; the example plugin (``example-projects``) uses it end to end."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from imbi_plugin_sdk import NotFound, PermissionDenied, ProjectMetadata

from imbi.core.models import AuditEvent, Organization, Project, ProjectType, Role
from plugins_core.isolation import host
from plugins_core.isolation.host import HostRequests
from plugins_core.models import ExecutionMode, Plugin
from plugins_core.serving.projects import DatabaseProjectMetadata
from plugins_core.serving.resolution import resolve, resolve_plugin
from plugins_core.serving.runner import default_runner
from tests.plugins_core.conftest import API_TOKEN

FOREIGN_NAME = "Globex Payroll 7731"
FOREIGN_DESCRIPTION = "globex-private-description-9913"


@pytest.fixture
def foreign(other_org: Organization) -> Project:
    """A project of another organization, named so that any leak is greppable."""
    ptype = ProjectType.objects.create(organization=other_org, slug="svc", name="Service")
    return Project.objects.create(
        organization=other_org,
        project_type=ptype,
        slug="payroll",
        name=FOREIGN_NAME,
        description=FOREIGN_DESCRIPTION,
    )


@pytest.fixture
def sibling(org: Organization, project_type: ProjectType) -> Project:
    return Project.objects.create(
        organization=org,
        project_type=project_type,
        slug="ledger",
        name="Ledger",
        description="Double-entry ledger",
    )


@pytest.fixture
def projects_plugin(install: Any, bind_type: Any) -> Plugin:
    plugin = install("example-projects")
    bind_type(plugin, default=True)
    return plugin


def tab(project: Project) -> str:
    return f"/api/orgs/{project.organization.slug}/projects/{project.pk}/configuration"


# --------------------------------------------------------------------------- the reader


def test_reads_the_current_project_and_a_sibling_in_one_query_each(
    project: Project, sibling: Project, django_assert_num_queries: Any
) -> None:
    reader = DatabaseProjectMetadata(project.organization_id, project.pk)
    with django_assert_num_queries(1):
        current = reader.current()
    assert current == ProjectMetadata(
        id=project.pk,
        slug="billing",
        name="Billing",
        description="",
        project_type="api",
        project_type_name="API",
        organization="acme",
    )
    with django_assert_num_queries(1):
        assert reader.get("ledger").description == "Double-entry ledger"


def test_another_organizations_project_answers_exactly_like_a_missing_one(
    project: Project, foreign: Project, django_assert_num_queries: Any
) -> None:
    reader = DatabaseProjectMetadata(project.organization_id, project.pk)
    with pytest.raises(NotFound) as other_org, django_assert_num_queries(1):
        reader.get("payroll")
    with pytest.raises(NotFound) as missing, django_assert_num_queries(1):
        reader.get("nowhere")
    assert other_org.value.detail == "no project 'payroll' in this organization"
    assert missing.value.detail == "no project 'nowhere' in this organization"
    with pytest.raises(NotFound) as odd, django_assert_num_queries(0):
        reader.get({"organization": "globex"})  # type: ignore[arg-type]
    assert odd.value.detail == "no project '?' in this organization"
    # the current project is looked up in the organization too: a foreign id finds nothing
    assert DatabaseProjectMetadata(project.organization_id, foreign.pk).current() is None
    assert DatabaseProjectMetadata(project.organization_id).current() is None


# --------------------------------------------------------------------------- capability


def test_the_capability_is_on_the_context_only_when_declared(
    project: Project, projects_plugin: Plugin, install: Any, bind_project: Any
) -> None:
    assert projects_plugin.approved_permissions == {
        "network_hosts": [],
        "storage": False,
        "project_metadata": True,
    }
    resolved = resolve(project, "configuration")
    assert isinstance(resolved.context.projects, DatabaseProjectMetadata)
    assert resolved.context.projects.organization_id == project.organization_id
    static = install("example-static")
    bind_project(static, default=True)
    assert resolve(project, "configuration", "example-static").context.projects is None
    # outside any project (the periodic connection test): the organization, no current
    alone = resolve_plugin(projects_plugin).context.projects
    assert isinstance(alone, DatabaseProjectMetadata) and alone.current_id is None


@pytest.mark.parametrize("mode", [ExecutionMode.IN_PROCESS, ExecutionMode.ISOLATED])
def test_the_example_plugin_reads_its_organization_in_both_modes(
    mode: str,
    project: Project,
    sibling: Project,
    foreign: Project,
    projects_plugin: Plugin,
    api: Any,
    caplog: Any,
) -> None:
    host.reset_runtime()
    projects_plugin.execution_mode = mode
    projects_plugin.options = {"related": "ledger"}
    projects_plugin.save()
    viewer = api(Role.VIEWER)
    response = viewer.get(tab(project) + "/values")
    assert response.status_code == 200, response.content
    # isolated reads went through a runner's host requests: one warm runner is pooled
    assert len(host.pool().runners()) == (1 if mode == ExecutionMode.ISOLATED else 0)
    values = {v["key"]: v["value"] for v in response.json()["values"]}
    assert values["project/name"] == "Billing"
    assert values["project/organization"] == "acme"
    assert values["related/ledger/description"] == "Double-entry ledger"
    assert set(values) == {
        f"{prefix}/{name}"
        for prefix in ("project", "related/ledger")
        for name in (
            "id",
            "slug",
            "name",
            "description",
            "project_type",
            "project_type_name",
            "organization",
        )
    }
    answers = {}
    for slug in ("payroll", "nowhere"):  # another organization's project, a missing one
        projects_plugin.options = {"related": slug}
        projects_plugin.save()
        response = viewer.get(tab(project) + "/values")
        assert response.status_code == 404, response.content
        answers[slug] = response.json()["detail"].replace(slug, "X")
        assert response.json()["code"] == "not_found"
        text = response.content.decode() + "\n".join(r.getMessage() for r in caplog.records)
        for leak in (FOREIGN_NAME, FOREIGN_DESCRIPTION, API_TOKEN):
            assert leak not in text
    assert answers["payroll"] == answers["nowhere"] == "no project 'X' in this organization"
    host.reset_runtime()


# --------------------------------------------------------------------------- host requests


def test_host_requests_are_checked_against_the_approved_permissions(
    project: Project, foreign: Project, projects_plugin: Plugin, install: Any
) -> None:
    requests = HostRequests(resolve(project, "configuration"))
    assert requests({"t": "host", "id": 1, "op": "project.current"})["slug"] == "billing"
    with pytest.raises(NotFound, match="no project 'payroll' in this organization"):
        requests({"t": "host", "id": 1, "op": "project.get", "slug": "payroll"})
    for forged in ({"organization": "globex"}, {"organization_id": foreign.organization_id}):
        with pytest.raises(PermissionDenied, match="project requests carry only a slug"):
            requests({"t": "host", "id": 1, "op": "project.get", "slug": "payroll", **forged})
    with pytest.raises(PermissionDenied, match="project requests carry only a slug"):
        requests({"t": "host", "id": 1, "op": "project.current", "slug": "payroll"})
    # an undeclared capability: refused before any lookup
    static = install("example-static")
    undeclared = HostRequests(resolve_plugin(static))
    with pytest.raises(PermissionDenied, match="not a declared, approved permission"):
        undeclared({"t": "host", "id": 1, "op": "project.current"})
    # declared but no longer approved (the row's approval was withdrawn): refused too
    target = resolve(project, "configuration")
    Plugin.objects.filter(pk=projects_plugin.pk).update(approved_permissions={"storage": False})
    target.binding.plugin.refresh_from_db()
    with pytest.raises(PermissionDenied, match="not a declared, approved permission"):
        HostRequests(target)({"t": "host", "id": 1, "op": "project.get", "slug": "billing"})


# --------------------------------------------------------------------------- approvals


def test_an_upgrade_asking_for_project_metadata_waits_for_an_admin(
    project: Project, projects_plugin: Plugin, api: Any, django_user_model: Any, client: Any
) -> None:
    # what the previous version declared: nothing
    projects_plugin.approved_permissions = {"network_hosts": [], "storage": False}
    projects_plugin.save()
    response = api(Role.VIEWER).get(tab(project))
    assert response.status_code == 503
    assert response.json()["code"] == "plugin_permissions_pending"
    assert response.json()["detail"] == (
        "plugin 'example-projects' 1.2.0 asks for permissions an admin has not approved: "
        "project metadata"
    )
    admin_api = api(Role.ADMIN, username="org-admin")
    state = admin_api.get(f"/api/orgs/acme/plugins/{projects_plugin.slug}")
    assert state.status_code == 200, state.content
    assert state.json()["permissions"] == {
        "declared": ["project metadata"],
        "approved": [],
        "pending": ["project metadata"],
    }
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(root)
    page = client.get(f"/admin/plugins_core/plugin/{projects_plugin.pk}/change/").content.decode()
    assert "declared: project metadata; approved: none; pending approval: project metadata" in page
    done = client.post(
        "/admin/plugins_core/plugin/",
        {"action": "approve_permissions", "_selected_action": [projects_plugin.pk]},
    )
    assert done.status_code == 302
    event = AuditEvent.objects.get(action=AuditEvent.Action.PLUGIN_STATE)
    assert event.detail == "permissions approved: network none; storage no; project metadata yes"
    assert api(Role.VIEWER, username="second").get(tab(project)).status_code == 200
    state = admin_api.get(f"/api/orgs/acme/plugins/{projects_plugin.slug}")
    assert state.json()["permissions"]["pending"] == []


def test_the_catalog_and_wizard_show_the_permission(client: Any, django_user_model: Any) -> None:
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(root)
    detail = client.get("/catalog/example-projects/")
    assert detail.status_code == 200
    assert "reads project metadata" in detail.content.decode()
    wizard = client.get(reverse("admin:plugins_core_install_start")).content.decode()
    assert "example-projects · imbi-plugin-example 1.2.0 · no network hosts · project metadata" in (
        wizard
    )


def test_runs_in_the_default_runner_without_a_project(projects_plugin: Plugin) -> None:
    result = default_runner().call(resolve_plugin(projects_plugin), "test_connection")
    assert result.ok and result.message == "project metadata readable (no project)"


# --------------------------------------------------------------------------- versions


def test_a_1_1_host_refuses_the_1_2_plugin_clearly_and_keeps_1_1_plugins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from imbi_plugin_sdk import ApiVersion

    from plugins_core import registry

    # the distribution's declared range, checked before import
    assert registry.sdk_range_problem(">=1.2,<2", host_version="1.1.0") == (
        "requires imbi-plugin-sdk>=1.2,<2 but this host runs imbi-plugin-sdk 1.1.0"
    )
    # the handler's api_version, checked after import
    monkeypatch.setattr(registry.loading, "HOST_API_VERSION", ApiVersion(1, 1))
    example = [c for c in registry.discover() if c.distribution == "imbi-plugin-example"]
    entries = registry.build_snapshot(example, generation=1).entries
    assert entries["example-projects"].status is registry.Status.INCOMPATIBLE
    assert (
        "plugin targets api 1.2; host supports 1.x up to 1.1" in entries["example-projects"].reason
    )
    assert entries["example-config"].status is registry.Status.LOADED  # api 1.0 keeps working


def test_authors_run_the_example_isolated_with_in_memory_metadata() -> None:
    from imbi_plugin_example.projects import ExampleProjects
    from imbi_plugin_sdk import Credentials
    from imbi_plugin_sdk.testkit import make_context

    from plugins_core.isolation.testing import isolated

    context = make_context(options={"related": "contract-test-sibling"})
    remote = isolated(ExampleProjects(context, Credentials()), network_hosts=())
    try:
        values = {v.key: v.value for v in remote.get_values(None)}
        assert values["project/slug"] == "contract-test-project"
        assert values["related/contract-test-sibling/id"] == "2"
        foreign = make_context(options={"related": "contract-test-foreign"})
        with pytest.raises(NotFound, match="no project 'contract-test-foreign'"):
            isolated(ExampleProjects(foreign, Credentials()), network_hosts=()).list_keys()
    finally:
        host.reset_runtime()
