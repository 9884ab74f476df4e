"""A second default for a tab, through the pages: a field error naming the current default
and an explicit "make this the default instead of X" choice (issue 22).

Covers the project's Bind form, a project binding's edit page, the wizard's binding step
(step 6: without the choice, the last step failed) and the wizard's done page, which
pre-ticks "default" for the template's sibling plugin (CloudWatch after SSM; here
example-logs after example-config) and answered 500 when the tab had a default. Every form
is submitted as served (``tests/served_forms.py``).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from imbi.core.models import Organization, Project, ProjectType, Role
from plugins_core.models import Plugin, ProjectPlugin, ProjectTypePlugin, ThirdPartyService
from tests.plugins_core.pages.test_wizard import post, run_to_options, step_url
from tests.served_forms import form_in, submit_as_served

pytestmark = pytest.mark.django_db


def _errors(html: str) -> str:
    return " ".join(re.findall(r'class="(?:error|errorlist)[^"]*"[^>]*>(.*?)</', html, re.S))


def _resubmit(client: Client, response: Any, changes: dict[str, Any], **find: Any) -> Any:
    """Submit the form of a re-rendered (error) page as served, with ``changes``."""
    form = form_in(response.content.decode(), **find)
    data = form.data()
    for name, value in changes.items():
        assert name in form.names(), f"the page serves no {name!r}"
        data[name] = value
    return client.post(form.action or response.request["PATH_INFO"], data)


@pytest.fixture
def owner(make_member: Any, org: Organization, project: Project) -> Client:
    user = make_member(org, Role.OWNER, username="owner")
    project.owners.add(user)
    client = Client()
    client.force_login(user)
    return client


def _other_service(org: Organization) -> ThirdPartyService:
    return ThirdPartyService.objects.create(
        organization=org, vendor="othervendor", name="Other", slug="other"
    )


def _plugin(org: Organization, service: ThirdPartyService, slug: str, handler: str) -> Plugin:
    return Plugin.objects.create(
        organization=org,
        service=service,
        slug=slug,
        plugin_type="logs" if "logs" in handler else "configuration",
        handler=handler,
    )


def test_project_bind_form_names_the_default_and_offers_to_replace_it(
    owner: Client, org: Organization, project: Project
) -> None:
    service = _other_service(org)
    first = _plugin(org, service, "cfg-a", "example-config")
    second = _plugin(org, service, "cfg-b", "example-config")
    ProjectPlugin.objects.create(project=project, plugin=first, tab="configuration", default=True)
    url = reverse("ui:project", args=(org.slug, project.pk)) + "?tab=plugins"
    page = owner.get(url).content.decode()
    assert "replace_default" not in form_in(page, id="add-binding").names()

    response = submit_as_served(owner, url, {"plugin": "cfg-b", "default": "on"}, id="add-binding")
    assert response.status_code == 200
    html = response.content.decode()
    assert "cfg-a is already the default for this tab" in _errors(html)
    assert "Make cfg-b the default instead of cfg-a" in html
    assert not ProjectPlugin.objects.filter(plugin=second).exists()

    response = _resubmit(owner, response, {"replace_default": "on"}, id="add-binding")
    assert response.status_code == 302, _errors(response.content.decode())
    defaults = dict(ProjectPlugin.objects.values_list("plugin__slug", "default"))
    assert defaults == {"cfg-a": False, "cfg-b": True}


def test_project_binding_edit_page_offers_to_replace_the_default(
    owner: Client, org: Organization, project: Project
) -> None:
    service = _other_service(org)
    first = _plugin(org, service, "cfg-a", "example-config")
    second = _plugin(org, service, "cfg-b", "example-config")
    ProjectPlugin.objects.create(project=project, plugin=first, tab="configuration", default=True)
    binding = ProjectPlugin.objects.create(project=project, plugin=second, tab="configuration")
    url = reverse("ui:project-binding", args=(org.slug, project.pk, binding.pk))

    response = submit_as_served(owner, url, {"default": "on"}, has="default")
    assert response.status_code == 200
    assert "cfg-a is already the default" in _errors(response.content.decode())
    response = _resubmit(owner, response, {"replace_default": "on"}, has="default")
    assert response.status_code == 302, _errors(response.content.decode())
    binding.refresh_from_db()
    assert binding.default
    assert not ProjectPlugin.objects.get(plugin=first).default


@pytest.fixture
def operator(django_user_model: Any) -> Client:
    user = django_user_model.objects.create_superuser("operator", "op@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def test_wizard_bind_step_names_the_default_and_the_install_replaces_it(
    operator: Client, org: Organization, project_type: ProjectType, project: Project
) -> None:
    current = _plugin(org, _other_service(org), "other-config", "example-config")
    ProjectTypePlugin.objects.create(
        project_type=project_type, plugin=current, tab="configuration", default=True
    )
    pid = run_to_options(operator, org)
    post(operator, pid, "test", {"action": "Next"}, "bind")
    bind = step_url(pid, "bind")
    served = form_in(operator.get(bind).content.decode(), has="project_types")
    assert served.control("default").checked  # pre-ticked

    response = submit_as_served(
        operator, bind, {"project_types": str(project_type.pk)}, has="project_types"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "other-config is already the default for this tab of API" in _errors(html)
    response = _resubmit(operator, response, {"replace_default": "on"}, has="project_types")
    assert response.status_code == 302, _errors(response.content.decode())
    assert response["Location"].endswith("/finish/")

    finish = step_url(pid, "finish")
    assert "instead of the current default" in operator.get(finish).content.decode()
    response = submit_as_served(operator, finish, has="install", submit="install")
    assert response.status_code == 302, _errors(response.content.decode())
    rows = ProjectTypePlugin.objects.filter(project_type=project_type, tab="configuration")
    assert dict(rows.values_list("plugin__slug", "default")) == {
        "other-config": False,
        "example-config": True,
    }


def test_wizard_done_page_sibling_conflict_is_a_field_error_not_a_500(
    operator: Client, org: Organization, project_type: ProjectType, project: Project
) -> None:
    current = _plugin(org, _other_service(org), "other-logs", "example-logs")
    ProjectTypePlugin.objects.create(
        project_type=project_type, plugin=current, tab="logs", default=True
    )
    pid = run_to_options(operator, org)
    post(operator, pid, "test", {"action": "Next"}, "bind")
    response = submit_as_served(
        operator, step_url(pid, "bind"), {"project_types": str(project_type.pk)}, has="default"
    )
    assert response.status_code == 302, _errors(response.content.decode())
    response = submit_as_served(operator, step_url(pid, "finish"), has="install", submit="install")
    assert response.status_code == 302, _errors(response.content.decode())
    done = response["Location"]
    page = operator.get(done).content.decode()
    sibling = form_in(page, has="sibling")
    prefix = f"s{sibling.control('sibling').value}-"
    assert sibling.control(f"{prefix}default").checked  # pre-ticked for the sibling

    response = submit_as_served(operator, done, has="sibling")
    assert response.status_code == 200
    html = response.content.decode()
    assert "other-logs is already the default for this tab of API" in _errors(html)
    assert "Make example-logs the default instead of other-logs" in html
    response = _resubmit(operator, response, {f"{prefix}replace_default": "on"}, has="sibling")
    assert response.status_code == 302, _errors(response.content.decode())
    rows = ProjectTypePlugin.objects.filter(project_type=project_type, tab="logs")
    assert dict(rows.values_list("plugin__slug", "default")) == {
        "other-logs": False,
        "example-logs": True,
    }
