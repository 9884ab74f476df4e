"""Destructive actions ask first, on a page that says what they reach (issue 22).

Django's delete-confirmation pattern for every destructive action on the pages: disabling a
plugin on the registry page (and the change list's "Disable selected"), unbinding on the
project page, deleting in the admin; removing a distribution is in
tests/plugins_core/distributions/test_distributions.py. GET shows the page (how many
projects and bindings), a POST without the confirmation changes nothing, and the page's own
form, submitted as served, acts.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from imbi.core.models import AuditEvent, Organization, Project, ProjectType, Role
from plugins_core.models import Plugin, ProjectPlugin, ProjectTypePlugin
from tests.served_forms import form_in, submit_as_served

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(django_user_model: Any) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", "r@e.com", "pw"))
    return client


@pytest.fixture
def reach(
    org: Organization, project_type: ProjectType, project: Project, config_plugin: Plugin
) -> Project:
    """``config_plugin`` serves two projects: one of its type binding's type, another
    (of a second type) through its own binding."""
    other_type = ProjectType.objects.create(organization=org, slug="web", name="Web")
    other = Project.objects.create(
        organization=org, project_type=other_type, slug="site", name="Site"
    )
    ProjectTypePlugin.objects.create(
        project_type=project_type, plugin=config_plugin, tab="configuration"
    )
    ProjectPlugin.objects.create(project=other, plugin=config_plugin, tab="configuration")
    return other


def _link(page: str, href_start: str) -> str:
    found = re.search(rf'href="({re.escape(href_start)}[^"]*)"', page)
    assert found, f"no link to {href_start}"
    return html.unescape(found.group(1))


def test_registry_disable_asks_first_and_names_projects_and_bindings(
    root: Client, config_plugin: Plugin, reach: Project
) -> None:
    page = root.get(reverse("admin:plugins_core_registry")).content.decode()
    url = _link(page, reverse("admin:plugins_core_plugin_state", args=(config_plugin.pk,)))
    confirm = root.get(url)
    text = confirm.content.decode()
    assert confirm.status_code == 200
    assert "Disable the plugin example-config in Acme" in text
    assert "<strong>2</strong> projects" in text and "<strong>2</strong> bindings" in text
    assert "No, take me back" in text
    config_plugin.refresh_from_db()
    assert config_plugin.enabled  # a GET changes nothing

    unconfirmed = root.post(url, {"enabled": "0"})  # the old one-click form
    assert unconfirmed.status_code == 200
    config_plugin.refresh_from_db()
    assert config_plugin.enabled

    done = submit_as_served(root, url, has="confirm")
    assert done.status_code == 302
    config_plugin.refresh_from_db()
    assert not config_plugin.enabled
    assert AuditEvent.objects.filter(action=AuditEvent.Action.PLUGIN_STATE).count() == 1


def test_changelist_disable_selected_asks_first(
    root: Client, config_plugin: Plugin, reach: Project
) -> None:
    changelist = reverse("admin:plugins_core_plugin_changelist")
    response = root.post(
        changelist, {"action": "disable_plugins", "_selected_action": [config_plugin.pk]}
    )
    text = response.content.decode()
    assert response.status_code == 200 and "example-config in acme" in text
    assert "<strong>2</strong> projects" in text
    form = form_in(text, has="confirm")
    response = root.post(form.action, form.data())
    assert response.status_code == 302
    config_plugin.refresh_from_db()
    assert not config_plugin.enabled


def test_project_unbind_asks_first(
    make_member: Any, org: Organization, project: Project, config_plugin: Plugin
) -> None:
    owner = make_member(org, Role.OWNER, username="owner")
    project.owners.add(owner)
    client = Client()
    client.force_login(owner)
    binding = ProjectPlugin.objects.create(
        project=project, plugin=config_plugin, tab="configuration"
    )
    page = client.get(reverse("ui:project", args=(org.slug, project.pk)) + "?tab=plugins")
    delete = reverse("ui:project-binding-delete", args=(org.slug, project.pk, binding.pk))
    url = _link(page.content.decode(), delete)
    confirm = client.get(url).content.decode()
    assert "Remove this project&#x27;s configuration binding of example-config" in confirm
    assert "<strong>1</strong> binding" in confirm
    assert ProjectPlugin.objects.filter(pk=binding.pk).exists()
    done = submit_as_served(client, url, has="confirm")
    assert done.status_code == 302
    assert not ProjectPlugin.objects.filter(pk=binding.pk).exists()


def test_admin_delete_page_lists_the_bindings_it_takes(
    root: Client, config_plugin: Plugin, reach: Project
) -> None:
    url = reverse("admin:plugins_core_plugin_delete", args=(config_plugin.pk,))
    text = root.get(url).content.decode()
    assert "Project-type bindings: 1" in text and "Project bindings: 1" in text
    assert Plugin.objects.filter(pk=config_plugin.pk).exists()
    done = submit_as_served(root, url, id=None, has="post")
    assert done.status_code == 302
    assert not Plugin.objects.filter(pk=config_plugin.pk).exists()
