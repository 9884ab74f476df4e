"""The "who can do what" table of docs/operators.md (repeated in docs/api.md) against the code.

Each row's action has a probe below that makes real requests on every surface the row names
and answers True (done), False (refused the documented way: 403 or 404 from the API, the
admin's login redirect, 403 or 404 from the admin) or raises (anything else, e.g. a 500, or
two surfaces disagreeing). Each cell is then checked:

- ``yes``: allowed without the read-secrets grant and without owning the project;
- ``no``: refused even with the grant and as an owner of the project;
- ``with grant``: allowed with the grant, refused without it;
- ``own projects``: allowed on a project that lists the user as owner, refused otherwise.

A documented row without a probe, or a probe without a row, fails the test too. Finally, an
operator of another organization is refused everything (the table's "anyone else").
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from imbi.core.models import AuditEvent, Membership, Organization, Project, ProjectType, Role
from plugins_core.models import Plugin, ProjectTypePlugin, ServiceApplication, ThirdPartyService

pytestmark = pytest.mark.django_db

DOCS = Path(__file__).resolve().parents[3] / "docs"
MARKER = "<!-- permission table"
SECRET = "table-secret-value-6c1f"
_counter = itertools.count()


def read_table(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(MARKER))
    table = []
    for line in lines[start + 1 :]:
        if not line.startswith("|"):
            break
        table.append(line)
    return table


def parse(table: list[str]) -> tuple[list[str], list[tuple[str, str, list[str]]]]:
    header = [c.strip() for c in table[0].strip("|").split("|")]
    rows = []
    for line in table[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows.append((cells[0], cells[1], cells[2:]))
    return header[2:], rows


# --------------------------------------------------------------------------- the world


@dataclass
class World:
    org: Organization
    project: Project
    project_type: ProjectType
    service: ThirdPartyService
    plugin: Plugin
    spare: Plugin  # bound nowhere: project-type bindings are made with it
    type_binding: ProjectTypePlugin


@pytest.fixture
def world(db: Any, django_user_model: Any) -> World:
    org = Organization.objects.create(slug="acme", name="Acme")
    ptype = ProjectType.objects.create(organization=org, slug="api", name="API")
    project = Project.objects.create(
        organization=org, project_type=ptype, slug="billing", name="Billing"
    )
    service = ThirdPartyService.objects.create(
        organization=org, vendor="example", name="Example", slug="example"
    )
    ServiceApplication.objects.create(service=service, credentials={"api_token": "t"})
    plugin = Plugin.objects.create(
        organization=org,
        service=service,
        slug="example-config",
        plugin_type="configuration",
        handler="example-config",
    )
    spare = Plugin.objects.create(
        organization=org,
        service=service,
        slug="example-static",
        plugin_type="configuration",
        handler="example-static",
    )
    binding = ProjectTypePlugin.objects.create(
        project_type=ptype, plugin=plugin, tab="configuration", default=True
    )
    logs = Plugin.objects.create(
        organization=org,
        service=service,
        slug="example-logs",
        plugin_type="logs",
        handler="example-logs",
    )
    ProjectTypePlugin.objects.create(project_type=ptype, plugin=logs, tab="logs", default=True)
    AuditEvent.objects.create(action=AuditEvent.Action.CONFIG_SET, organization=org, key="k")
    root = django_user_model.objects.create_superuser("setup-root", "r@example.com", "pw")
    api = APIClient()
    api.force_authenticate(root)
    response = api.put(
        f"/api/orgs/acme/projects/{project.pk}/configuration/keys/TOKEN",
        {"data_type": "string", "value": SECRET, "secret": True},
        format="json",
    )
    assert response.status_code == 200
    return World(org, project, ptype, service, plugin, spare, binding)


def make_user(world: World, column: str, *, grant: bool, owns: bool, model: Any) -> Any:
    name = f"{column}-{next(_counter)}"
    if column == "superuser":
        return model.objects.create_superuser(name, f"{name}@example.com", "pw")
    role = Role.ADMIN if column == "operator" else Role(column)
    user = model.objects.create_user(name, password="pw", is_staff=column == "operator")
    Membership.objects.create(user=user, organization=world.org, role=role, can_read_secrets=grant)
    if owns:
        world.project.owners.add(user)
    return user


# --------------------------------------------------------------------------- the probes


def _api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _web(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _api_ok(response: Any, *ok: int) -> bool:
    if response.status_code in ok:
        return True
    if response.status_code in (403, 404):
        return False
    raise AssertionError(f"unexpected {response.status_code}: {response.content[:300]!r}")


def _admin_ok(user: Any, response: Any, *ok: int) -> bool:
    to_login = response.status_code == 302 and response["Location"].startswith("/admin/login/")
    if response.status_code in ok and not to_login:
        return True
    if not user.is_staff:  # the admin sends them to its login page
        if to_login:
            return False
    elif response.status_code in (403, 404):
        return False
    raise AssertionError(f"unexpected {response.status_code} for {user}")


def agree(*answers: bool) -> bool:
    assert len(set(answers)) == 1, f"surfaces disagree: {answers}"
    return answers[0]


def _project_url(w: World, tail: str = "") -> str:
    return f"/api/orgs/acme/projects/{w.project.pk}{tail}"


def probe_read(w: World, user: Any) -> bool:
    page = _web(user).get(reverse("ui:project", args=("acme", w.project.pk)))
    return agree(
        _api_ok(_api(user).get(_project_url(w, "/configuration")), 200),
        _api_ok(_api(user).get(_project_url(w, "/tabs")), 200),
        _api_ok(_api(user).get(_project_url(w, "/logs")), 200),
        _api_ok(_api(user).get(_project_url(w, "/configuration/values?keys=TOKEN")), 200),
        _api_ok(page, 200),
    )


def probe_reveal(w: World, user: Any) -> bool:
    response = _api(user).get(_project_url(w, "/configuration/values?keys=TOKEN&reveal=true"))
    revealed = _api_ok(response, 200)
    if revealed:
        assert response.json()["values"][0]["value"] == SECRET
    page = _web(user).get(reverse("ui:project", args=("acme", w.project.pk)))
    return agree(revealed, _api_ok(page, 200) and bool(page.context["can_reveal"]))


def probe_write(w: World, user: Any) -> bool:
    key = f"K{next(_counter)}"
    response = _api(user).put(
        _project_url(w, f"/configuration/keys/{key}"),
        {"data_type": "string", "value": "v"},
        format="json",
    )
    written = _api_ok(response, 200)
    if written:
        deleted = _api(user).delete(_project_url(w, f"/configuration/keys/{key}"))
        assert deleted.status_code == 204
    return written


def probe_read_bindings(w: World, user: Any) -> bool:
    page = _web(user).get(reverse("ui:project", args=("acme", w.project.pk)))
    shown = _api_ok(page, 200) and bool(page.context["rows"])
    return agree(
        _api_ok(_api(user).get(_project_url(w, "/bindings")), 200),
        _api_ok(_api(user).get("/api/orgs/acme/project-types/api/bindings"), 200),
        _api_ok(
            _api(user).get(f"/api/orgs/acme/project-types/api/bindings/{w.type_binding.pk}"),
            200,
        ),
        shown,
    )


def probe_project_bindings(w: World, user: Any) -> bool:
    client = _api(user)
    response = client.post(
        _project_url(w, "/bindings"),
        {"plugin": "example-config", "search_template": "${org}/${project}/"},
        format="json",
    )
    made = _api_ok(response, 201)
    if made:
        gone = client.delete(_project_url(w, f"/bindings/{response.json()['id']}"))
        assert gone.status_code == 204
    page = _web(user).get(reverse("ui:project", args=("acme", w.project.pk)))
    return agree(made, _api_ok(page, 200) and bool(page.context["can_bind"]))


def probe_type_bindings(w: World, user: Any) -> bool:
    client = _api(user)
    response = client.post(
        "/api/orgs/acme/project-types/api/bindings",
        {"plugin": "example-static", "search_template": "${org}/${project}/"},
        format="json",
    )
    made = _api_ok(response, 201)
    if made:
        gone = client.delete(f"/api/orgs/acme/project-types/api/bindings/{response.json()['id']}")
        assert gone.status_code == 204
    return made


def probe_install(w: World, user: Any) -> bool:
    api = _api(user).post(
        "/api/orgs/acme/plugins/install", {"entry_point": "example-config"}, format="json"
    )
    wizard = _web(user).get(reverse("admin:plugins_core_install_start"))
    options = []
    if wizard.status_code == 200:
        options = list(wizard.context["form"].fields["organization"].queryset)
    return agree(
        _api_ok(api, 200, 201),
        _admin_ok(user, wizard, 200) and w.org in options,
    )


def probe_plugin_admin(w: World, user: Any) -> bool:
    web = _web(user)
    pages = [
        web.get(reverse("admin:plugins_core_thirdpartyservice_change", args=(w.service.pk,))),
        web.get(reverse("admin:plugins_core_plugin_change", args=(w.plugin.pk,))),
        web.get(reverse("admin:plugins_core_projecttypeplugin_change", args=(w.type_binding.pk,))),
    ]
    toggled = web.post(
        reverse("admin:plugins_core_plugin_state", args=(w.spare.pk,)), {"enabled": "1"}
    )
    return agree(*(_admin_ok(user, r, 200) for r in pages), _admin_ok(user, toggled, 302))


def probe_members(w: World, user: Any, model: Any) -> bool:
    newcomer = model.objects.create_user(f"new-{next(_counter)}", password="pw")
    response = _web(user).post(
        reverse("admin:core_organization_change", args=(w.org.pk,)),
        {
            "slug": w.org.slug,
            "name": w.org.name,
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
            "memberships-0-user": newcomer.pk,
            "memberships-0-role": Role.VIEWER,
        },
    )
    added = _admin_ok(user, response, 302)
    return agree(added, Membership.objects.filter(user=newcomer, organization=w.org).exists())


def probe_org_content(w: World, user: Any) -> bool:
    web = _web(user)
    return agree(
        _admin_ok(user, web.get(reverse("admin:core_organization_change", args=(w.org.pk,))), 200),
        _admin_ok(
            user, web.get(reverse("admin:core_projecttype_change", args=(w.project_type.pk,))), 200
        ),
        _admin_ok(user, web.get(reverse("admin:core_project_change", args=(w.project.pk,))), 200),
    )


def probe_audit(w: World, user: Any) -> bool:
    response = _web(user).get(reverse("admin:core_auditevent_changelist"))
    if not _admin_ok(user, response, 200):
        return False
    # an operator elsewhere gets the page, with nothing of this organization on it
    return any(e.organization_id == w.org.pk for e in response.context["cl"].result_list)


def probe_organizations(w: World, user: Any) -> bool:
    slug = f"new-org-{next(_counter)}"
    web = _web(user)
    created = web.post(
        reverse("admin:core_organization_add"),
        {
            "slug": slug,
            "name": "New",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
        },
    )
    made = agree(_admin_ok(user, created, 302), Organization.objects.filter(slug=slug).exists())
    page = web.get(reverse("admin:core_organization_change", args=(w.org.pk,)))
    slug_editable = page.status_code == 200 and "slug" in page.context["adminform"].form.fields
    delete = web.get(reverse("admin:core_organization_delete", args=(w.org.pk,)))
    return agree(made, slug_editable, _admin_ok(user, delete, 200))


def probe_users(w: World, user: Any) -> bool:
    web = _web(user)
    return agree(
        _admin_ok(user, web.get(reverse("admin:auth_user_changelist")), 200),
        _admin_ok(user, web.get(reverse("admin:auth_group_changelist")), 200),
        _admin_ok(user, web.get(reverse("admin:authtoken_tokenproxy_changelist")), 200),
    )


PROBES: dict[str, Callable[..., bool]] = {
    "read configuration keys, masked values and logs": probe_read,
    "reveal secret values": probe_reveal,
    "write and delete configuration values": probe_write,
    "read the bindings of a project and of its type": probe_read_bindings,
    "add, change and remove a project's own bindings": probe_project_bindings,
    "add, change and remove project-type bindings": probe_type_bindings,
    "install a plugin": probe_install,
    "edit services, credentials, plugins, options and bindings; enable and disable plugins": (
        probe_plugin_admin
    ),
    "add and remove members, change roles and the read-secrets grant": probe_members,
    "edit the organization's name, project types and projects": probe_org_content,
    "read the organization's audit trail": probe_audit,
    "create and delete organizations, change an organization's slug": probe_organizations,
    "manage users, groups and API tokens": probe_users,
}


def _probe(action: str, world: World, user: Any, model: Any) -> bool:
    probe = PROBES[action]
    if probe is probe_members:
        return probe(world, user, model)
    return probe(world, user)


# --------------------------------------------------------------------------- the tests


def test_the_table_is_the_same_in_both_documents() -> None:
    assert read_table(DOCS / "operators.md") == read_table(DOCS / "api.md")


def test_every_documented_action_has_a_probe_and_every_probe_a_row() -> None:
    _, rows = parse(read_table(DOCS / "operators.md"))
    assert [action for action, _, _ in rows] == list(PROBES)


_, ROWS = parse(read_table(DOCS / "operators.md"))
COLUMNS, _ = parse(read_table(DOCS / "operators.md"))


@pytest.mark.parametrize(("action", "where", "cells"), ROWS, ids=[r[0][:40] for r in ROWS])
def test_each_cell_matches_the_code(
    world: World, django_user_model: Any, action: str, where: str, cells: list[str]
) -> None:
    assert COLUMNS == ["viewer", "editor", "owner", "admin", "operator", "superuser"]
    for column, cell in zip(COLUMNS, cells, strict=True):

        def run(*, grant: bool, owns: bool, column: str = column) -> bool:
            user = make_user(world, column, grant=grant, owns=owns, model=django_user_model)
            return _probe(action, world, user, django_user_model)

        where_cell = f"{action!r} / {column}"
        if cell == "yes":
            assert run(grant=False, owns=False) is True, where_cell
        elif cell == "no":
            assert run(grant=True, owns=True) is False, where_cell
        elif cell == "with grant":
            assert run(grant=True, owns=False) is True, where_cell
            assert run(grant=False, owns=False) is False, where_cell
        elif cell == "own projects":
            assert run(grant=False, owns=True) is True, where_cell
            assert run(grant=False, owns=False) is False, where_cell
        else:
            raise AssertionError(f"unknown cell {cell!r} in {where_cell}")
    assert re.fullmatch(r"[A-Za-z ,]+", where)


@pytest.mark.parametrize("action", list(PROBES), ids=[a[:40] for a in PROBES])
def test_an_operator_of_another_organization_is_refused_everything(
    world: World, django_user_model: Any, action: str
) -> None:
    other = Organization.objects.create(slug="globex", name="Globex")
    user = django_user_model.objects.create_user("outsider", password="pw", is_staff=True)
    Membership.objects.create(user=user, organization=other, role=Role.ADMIN, can_read_secrets=True)
    allowed = _probe(action, world, user, django_user_model)
    # users, groups and tokens are superuser-only: refused too, like everything else
    assert allowed is False
