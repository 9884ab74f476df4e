"""Project bindings stay inside their project (ADR 0011): the rule, and each surface a project
owner (or an administrator editing a project binding) can save a template through."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from imbi.core.models import Organization, Project, ProjectType, Role
from plugins_core.models import Plugin, ProjectPlugin
from plugins_core.serving.confinement import project_template_error

pytestmark = pytest.mark.django_db

ESCAPES = [
    "${org}/other-project/",  # another project's tree
    "/",  # the whole account (aws-ssm)
    "/${org}/",  # the whole organization
    "/${org}/${project}/../other-project/",  # climbs out
    "/${org}/./${project}/",
    "/${org}//${project}/",
    "/${org}/${project}x/",  # prefix trick: billingx is not billing
    "/${org}/${project}-old/",
    "/${org}/shared-${project}",
    "/shared/?p=${project}",  # identity only in a non-path position
    "/shared/#${project}",
    "/shared/%2e%2e/${project}/",
    "/shared/*/${project}/",
    "project:${project}",  # a query is not a path
    "project:${project} OR project:other-project",
    "/${org}/$${project}/",  # "$$" is a literal dollar, not the variable
    "/${org}/other-project/${project}/",  # inside another project's tree
    "/${org}/${project_type}/",
]
CONFINED = [
    "",  # inherits the project type's template
    "/${org}/${project}/",
    "/${org}/${project}",
    "${project}/",
    "acme/${project}",
    "/aws/lambda/${project}",
    "/${org}/${project_id}/secrets/",
    "/${org}/${project}/sub.dir/x-y_z/",
    "/${org}/${project_type}/${project}/",
]


@pytest.fixture
def neighbour(org: Organization, project_type: ProjectType) -> Project:
    return Project.objects.create(
        organization=org, project_type=project_type, slug="other-project", name="Other"
    )


@pytest.mark.parametrize("template", ESCAPES)
def test_escaping_templates_are_refused(template: str, project: Project, neighbour: Any) -> None:
    assert project_template_error(template, project) is not None, template


@pytest.mark.parametrize("template", CONFINED)
def test_confined_templates_are_accepted(template: str, project: Project, neighbour: Any) -> None:
    assert project_template_error(template, project) is None, template


def test_another_projects_id_is_refused_like_its_slug(project: Project, neighbour: Any) -> None:
    message = project_template_error(f"/acme/{neighbour.pk}/${{project}}/", project)
    assert message == f"names another project ({neighbour.pk}) before ${{project}}"


# --------------------------------------------------------------------------- surfaces


@pytest.fixture
def owner(make_member: Any, org: Organization, project: Project) -> Any:
    user = make_member(org, Role.OWNER, username="owner")
    project.owners.add(user)
    return user


ATTACK = "${org}/other-project/"


def test_owner_cannot_save_an_escaping_template_through_the_api(
    project: Project, config_plugin: Plugin, api: Any, neighbour: Any
) -> None:
    owner = api(Role.OWNER)
    project.owners.add(owner.user)
    url = f"/api/orgs/acme/projects/{project.pk}/bindings"
    response = owner.post(url, {"plugin": "example-config", "search_template": ATTACK}, "json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid_input"
    assert "${project}" in body["errors"]["search_template"]
    assert not ProjectPlugin.objects.exists()
    # a confined binding saves; changing it to escape is refused the same way
    made = owner.post(url, {"plugin": "example-config", "search_template": "/${project}/"}, "json")
    assert made.status_code == 201, made.content
    binding_url = f"{url}/{made.json()['id']}"
    response = owner.patch(binding_url, {"search_template": "/"}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid_input"
    assert ProjectPlugin.objects.get().search_template == "/${project}/"


def test_owner_cannot_save_an_escaping_template_on_the_project_page(
    owner: Any, project: Project, config_plugin: Plugin, neighbour: Any
) -> None:
    client = Client()
    client.force_login(owner)
    add = reverse("ui:project-binding-add", args=("acme", project.pk))
    response = client.post(add, {"plugin": "example-config", "search_template": ATTACK})
    assert response.status_code == 200
    assert "must contain ${project} or ${project_id}" in response.content.decode()
    assert not ProjectPlugin.objects.exists()
    response = client.post(add, {"plugin": "example-config", "search_template": "/${project}/"})
    assert response.status_code == 302
    binding = ProjectPlugin.objects.get()
    edit = reverse("ui:project-binding", args=("acme", project.pk, binding.pk))
    response = client.post(edit, {"search_template": "/${org}/other-project/${project}/"})
    assert response.status_code == 200
    assert "names another project (other-project)" in response.content.decode()
    binding.refresh_from_db()
    assert binding.search_template == "/${project}/"


def test_admin_cannot_save_an_escaping_project_binding_either(
    django_user_model: Any, project: Project, config_plugin: Plugin, neighbour: Any
) -> None:
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(root)
    response = client.post(
        reverse("admin:plugins_core_projectplugin_add"),
        {
            "project": project.pk,
            "plugin": config_plugin.pk,
            "tab": "configuration",
            "search_template": ATTACK,
            "options": "{}",
        },
    )
    assert response.status_code == 200
    assert "must contain ${project} or ${project_id}" in response.content.decode()
    assert not ProjectPlugin.objects.exists()
    # the project type is where an administrator sets a shared location
    response = client.post(
        reverse("admin:plugins_core_projecttypeplugin_add"),
        {
            "project_type": project.project_type_id,
            "plugin": config_plugin.pk,
            "tab": "configuration",
            "search_template": "/${org}/shared/",
            "options": "{}",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]


@pytest.mark.parametrize(
    ("handler", "plugin_type", "option", "value"),
    [
        ("aws-cloudwatch-logs", "logs", "log_group", "/ecs/other-project"),
        ("github-actions", "configuration", "repository", "acme/other-project"),
    ],
)
def test_owner_cannot_point_a_binding_elsewhere_through_a_location_option(
    org: Organization,
    project: Project,
    api: Any,
    handler: str,
    plugin_type: str,
    option: str,
    value: str,
) -> None:
    from plugins_core.models import ThirdPartyService

    service = ThirdPartyService.objects.create(
        organization=org, vendor=handler, name=handler, slug=handler
    )
    Plugin.objects.create(
        organization=org, service=service, slug=handler, plugin_type=plugin_type, handler=handler
    )
    owner = api(Role.OWNER)
    project.owners.add(owner.user)
    response = owner.post(
        f"/api/orgs/acme/projects/{project.pk}/bindings",
        {"plugin": handler, "search_template": "", "options": {option: value}},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert f"options.{option}" in response.json()["errors"]
    assert not ProjectPlugin.objects.exists()
