"""The project page for owners (bind, override, unbind; nothing of other projects) and the
secret grep: no page that handles credentials or secret values ever contains one."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from imbi.core.models import AuditEvent, Organization, Project, ProjectType, Role
from plugins_core.models import (
    Plugin,
    ProjectPlugin,
    ProjectTypePlugin,
    ServiceApplication,
    ThirdPartyService,
)
from plugins_core.pages import wizard
from tests.plugins_core.conftest import API_TOKEN
from tests.plugins_core.pages.test_forms import PASSWORD, SIGNING_KEY, Secretive, use_handler

pytestmark = pytest.mark.django_db

SECRET_CONFIG = "db-password-value-91ab3e"
NEW_TOKEN = "fresh-token-value-0d5c2b"


def login(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_url(project: Project) -> str:
    return reverse("ui:project", args=(project.organization.slug, project.pk))


@pytest.fixture
def owner(make_member: Any, org: Organization, project: Project) -> Any:
    user = make_member(org, Role.OWNER, username="owner")
    project.owners.add(user)
    return user


@pytest.fixture
def other_project(org: Organization, project_type: ProjectType) -> Project:
    return Project.objects.create(
        organization=org, project_type=project_type, slug="payments", name="Payments"
    )


# --------------------------------------------------------------------------- access


def test_login_is_required_and_members_can_log_in(owner: Any, project: Project) -> None:
    client = Client()
    response = client.get(page_url(project))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("ui:login") + "?next=")
    response = client.post(
        reverse("ui:login"),
        {"username": "owner", "password": "pw-for-tests", "next": page_url(project)},
    )
    assert response.status_code == 302 and response["Location"] == page_url(project)
    assert client.get(page_url(project)).status_code == 200
    assert client.get(reverse("ui:projects")).status_code == 200


def test_project_page_renders_tabs_from_the_api(
    owner: Any, project: Project, config_plugin: Plugin, bind_type: Any
) -> None:
    bind_type(config_plugin, default=True, search_template="${org}/${project}/")
    page = login(owner).get(page_url(project)).content.decode()
    base = f"/api/orgs/acme/projects/{project.pk}/"
    for text in (
        f'data-tabs-url="{base}tabs"',
        f'data-values-url="{base}configuration/values"',
        f'data-logs-url="{base}logs"',
        'data-can-reveal="0"',
        "project.js",
        "example-config",
        "project type",
        "${org}/${project}/",
        "Bind a plugin to this project",
        "Override",
    ):
        assert text in page, text


def test_reveal_is_offered_only_to_members_who_may_read_secrets(
    make_member: Any, org: Organization, project: Project
) -> None:
    reader = make_member(org, Role.VIEWER, secrets=True, username="reader")
    page = login(reader).get(page_url(project)).content.decode()
    assert 'data-can-reveal="1"' in page
    assert "Only an owner of this project" in page and "Bind a plugin" not in page


def test_other_organizations_projects_are_404(owner: Any, other_org: Organization) -> None:
    pt = ProjectType.objects.create(organization=other_org, slug="api", name="API")
    foreign = Project.objects.create(organization=other_org, project_type=pt, slug="x", name="X")
    client = login(owner)
    assert client.get(page_url(foreign)).status_code == 404
    assert (
        client.post(
            reverse("ui:project-binding-add", args=("globex", foreign.pk)),
            {"plugin": "example-config"},
        ).status_code
        == 404
    )
    # and an existing project under the wrong organization slug is not found either
    assert client.get(reverse("ui:project", args=("globex", foreign.pk))).status_code == 404


# --------------------------------------------------------------------------- binding as owner


def test_owner_binds_overrides_and_unbinds_on_their_project(
    owner: Any, project: Project, config_plugin: Plugin, logs_plugin: Plugin, bind_type: Any
) -> None:
    bind_type(
        config_plugin, default=True, search_template="${org}/${project}/", options={"max_keys": 10}
    )
    client = login(owner)
    add = reverse("ui:project-binding-add", args=("acme", project.pk))
    response = client.post(
        add, {"plugin": "example-logs", "default": "on", "search_template": "/${nope}/"}
    )
    assert response.status_code == 200 and "unknown variable" in response.content.decode()
    response = client.post(
        add, {"plugin": "example-logs", "default": "on", "search_template": "/logs/${project}"}
    )
    assert response.status_code == 302
    binding = ProjectPlugin.objects.get(project=project, plugin=logs_plugin)
    assert response["Location"] == reverse(
        "ui:project-binding", args=("acme", project.pk, binding.pk)
    )
    assert (binding.default, binding.search_template) == (True, "/logs/${project}")

    # override the type binding of the configuration plugin, then its options
    response = client.post(add, {"plugin": "example-config"})
    assert response.status_code == 302
    override = ProjectPlugin.objects.get(project=project, plugin=config_plugin)
    edit = reverse("ui:project-binding", args=("acme", project.pk, override.pk))
    form = client.get(edit).content.decode()
    assert 'name="opt-max_keys"' in form and "Inherited: 10." in form
    assert 'name="opt-mode"' in form and "(inherit)" in form
    response = client.post(
        edit, {"search_template": "", "opt-max_keys": "abc", "opt-mode": "normal"}
    )
    assert response.status_code == 200 and "Enter a whole number" in response.content.decode()
    response = client.post(
        edit,
        {"search_template": "", "opt-max_keys": "25", "opt-mode": "flaky", "opt-read_only": "true"},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    override.refresh_from_db()
    assert override.options == {"max_keys": 25, "mode": "flaky", "read_only": True}

    page = client.get(page_url(project)).content.decode()
    assert "this project" in page and "max_keys, mode, read_only" in page

    delete = reverse("ui:project-binding-delete", args=("acme", project.pk, override.pk))
    confirm = client.get(delete)  # the confirmation page: nothing removed yet
    assert confirm.status_code == 200 and "1</strong> binding" in confirm.content.decode()
    assert client.post(delete).status_code == 200  # unconfirmed: the page again
    assert ProjectPlugin.objects.filter(pk=override.pk).exists()
    assert client.post(delete, {"confirm": "yes"}).status_code == 302
    assert not ProjectPlugin.objects.filter(pk=override.pk).exists()
    changes = AuditEvent.objects.filter(
        action=AuditEvent.Action.BINDING_CHANGE, project=project
    ).count()
    assert changes == 4  # two created, one changed, one deleted


def test_owner_cannot_bind_a_project_they_do_not_own(
    owner: Any, project: Project, other_project: Project, config_plugin: Plugin, logs_plugin: Plugin
) -> None:
    theirs = ProjectPlugin.objects.create(project=other_project, plugin=logs_plugin, tab="logs")
    client = login(owner)
    assert client.get(page_url(other_project)).status_code == 200  # may look
    add = reverse("ui:project-binding-add", args=("acme", other_project.pk))
    assert client.post(add, {"plugin": "example-config"}).status_code == 403
    edit = reverse("ui:project-binding", args=("acme", other_project.pk, theirs.pk))
    assert client.get(edit).status_code == 403
    assert client.post(edit, {"default": "on"}).status_code == 403
    delete = reverse("ui:project-binding-delete", args=("acme", other_project.pk, theirs.pk))
    assert client.post(delete, {"confirm": "yes"}).status_code == 403
    assert client.get(delete).status_code == 403
    # nor reach it through their own project's URL
    sneaky = reverse("ui:project-binding-delete", args=("acme", project.pk, theirs.pk))
    assert client.post(sneaky, {"confirm": "yes"}).status_code == 404
    assert ProjectPlugin.objects.filter(pk=theirs.pk).exists()
    assert not ProjectPlugin.objects.filter(project=other_project, plugin=config_plugin).exists()


def test_viewers_and_editors_cannot_bind(
    make_member: Any, org: Organization, project: Project, config_plugin: Plugin
) -> None:
    for role in (Role.VIEWER, Role.EDITOR):
        client = login(make_member(org, role, username=f"u-{role}"))
        add = reverse("ui:project-binding-add", args=("acme", project.pk))
        assert client.post(add, {"plugin": "example-config"}).status_code == 403
    assert not ProjectPlugin.objects.exists()


def test_preview_endpoint_expands_for_the_project(owner: Any, project: Project) -> None:
    url = reverse("ui:project-preview", args=("acme", project.pk))
    client = login(owner)
    assert client.get(url, {"template": "/${org}/${project_type}/${project}"}).json() == {
        "ok": True,
        "value": "/acme/api/billing",
    }
    assert client.get(url, {"template": "${oops}"}).json()["ok"] is False


# --------------------------------------------------------------------------- secret grep


@pytest.fixture
def secrets_everywhere(
    org: Organization,
    project: Project,
    project_type: ProjectType,
    service: ThirdPartyService,
    config_plugin: Plugin,
    bind_type: Any,
    install: Any,
    monkeypatch: pytest.MonkeyPatch,
    make_member: Any,
) -> dict[str, Any]:
    """Credentials, a secret option and a secret configuration value, all stored."""
    use_handler(monkeypatch, "secretive", Secretive)
    app = ServiceApplication.objects.get(service=service)
    app.credentials = {**app.credentials, "username": "svc-user", "password": PASSWORD}
    app.save()
    secretive = install("secretive", options={"endpoint": "https://x", "signing_key": SIGNING_KEY})
    type_binding = bind_type(config_plugin, default=True, search_template="${org}/${project}/")
    ProjectTypePlugin.objects.create(
        project_type=project_type,
        plugin=secretive,
        tab="configuration",
        options={"signing_key": SIGNING_KEY},
    )
    editor = make_member(org, Role.EDITOR, secrets=True, username="editor")
    api = APIClient()
    api.force_authenticate(editor)
    response = api.put(
        f"/api/orgs/acme/projects/{project.pk}/configuration/keys/DB_PASSWORD"
        "?source=example-config",
        {"data_type": "secret", "value": SECRET_CONFIG, "secret": True},
        format="json",
    )
    assert response.status_code == 200, response.content
    binding = ProjectPlugin.objects.create(
        project=project, plugin=secretive, tab="configuration", options={"signing_key": SIGNING_KEY}
    )
    return {"secretive": secretive, "type_binding": type_binding, "binding": binding}


SECRETS = (API_TOKEN, PASSWORD, SIGNING_KEY, SECRET_CONFIG, NEW_TOKEN)


def assert_clean(name: str, response: Any) -> str:
    assert response.status_code == 200, (name, response.status_code)
    html = response.content.decode()
    for secret in SECRETS:
        assert secret not in html, f"{name} shows a secret value"
    return html


def test_no_page_shows_a_secret_value(
    secrets_everywhere: dict[str, Any],
    django_user_model: Any,
    org: Organization,
    project: Project,
    service: ThirdPartyService,
    config_plugin: Plugin,
    owner: Any,
) -> None:
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    admin = login(root)
    secretive = secrets_everywhere["secretive"]
    binding = secrets_everywhere["binding"]
    pages = {
        "service change": reverse(
            "admin:plugins_core_thirdpartyservice_change", args=(service.pk,)
        ),
        "service list": reverse("admin:plugins_core_thirdpartyservice_changelist"),
        "plugin change (secret option)": reverse(
            "admin:plugins_core_plugin_change", args=(secretive.pk,)
        ),
        "plugin change": reverse("admin:plugins_core_plugin_change", args=(config_plugin.pk,)),
        "plugin list": reverse("admin:plugins_core_plugin_changelist"),
        "registry": reverse("admin:plugins_core_registry"),
        "type binding": reverse("admin:plugins_core_projecttypeplugin_changelist"),
        "wizard start": reverse("admin:plugins_core_install_start"),
        "project page (admin)": page_url(project),
        "project list": reverse("ui:projects"),
    }
    for name, url in pages.items():
        assert_clean(name, admin.get(url))
    assert "api_token: set" in admin.get(pages["service change"]).content.decode()

    # the wizard, after entering a new token and options, on every step
    start = admin.post(
        reverse("admin:plugins_core_install_start"),
        {"entry_point": "secretive", "organization": org.pk},
    )
    pid = re.search(r"/install/([^/]+)/", start["Location"]).group(1)  # type: ignore[union-attr]

    def step(name: str) -> str:
        return reverse("admin:plugins_core_install_step", args=(pid, name))

    assert (
        admin.post(step("service"), {"mode": "existing", "service": service.pk}).status_code == 302
    )
    assert admin.post(step("credentials"), {"password": NEW_TOKEN}).status_code == 302
    assert_clean("wizard credentials step", admin.get(step("credentials")))
    assert admin.post(step("options"), {"endpoint": "https://x"}).status_code == 302
    assert_clean("wizard options step", admin.get(step("options")))
    admin.post(step("test"), {"action": "test"})
    assert_clean("wizard test step", admin.get(step("test")))
    assert admin.post(step("test"), {"action": "Next"}).status_code == 302
    assert admin.post(step("bind"), {"search_template": ""}).status_code == 302
    summary = assert_clean("wizard summary", admin.get(step("finish")))
    assert "will be set" in summary
    done = admin.post(step("finish"))
    assert done.status_code == 302
    assert_clean("wizard done", admin.get(done["Location"]))
    assert wizard.SESSION_KEY not in str(admin.session.items()) or not admin.session.get(
        wizard.SESSION_KEY
    )

    # the owner's pages
    client = login(owner)
    assert_clean("project page (owner)", client.get(page_url(project)))
    assert_clean(
        "binding edit (owner)",
        client.get(reverse("ui:project-binding", args=("acme", project.pk, binding.pk))),
    )
    # the API masks secret values unless revealed by someone allowed to
    values = APIClient()
    values.force_authenticate(owner)
    response = values.get(
        f"/api/orgs/acme/projects/{project.pk}/configuration/values?source=example-config"
    )
    assert SECRET_CONFIG not in response.content.decode()
    # and the audit trail never holds a value
    for event in AuditEvent.objects.all():
        assert not any(s in f"{event.key} {event.detail}" for s in SECRETS)
