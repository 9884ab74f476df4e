"""The project page for owners (issue 22): the page tells its script which log sources
declare a histogram (only those are asked for one: another answers 501), the tabs are
WAI-ARIA tabs (one tab stop, each naming its panel), and the configuration value input is
plain text until the key is secret (the script makes it a password field; the browser test
in tests/browser/test_project_page.py checks that and the arrow keys)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from imbi.core.models import Organization, Project, Role
from plugins_core.models import Plugin, ProjectPlugin

pytestmark = pytest.mark.django_db


def test_only_sources_declaring_a_histogram_are_asked_for_one(
    make_member: Any, org: Organization, project: Project, logs_plugin: Plugin, install: Any
) -> None:
    logzio = install("logzio", "logzio-logs", plugin_type="logs")
    ProjectPlugin.objects.create(project=project, plugin=logs_plugin, tab="logs", default=True)
    ProjectPlugin.objects.create(project=project, plugin=logzio, tab="logs")
    owner = make_member(org, Role.OWNER, username="owner")
    project.owners.add(owner)
    client = Client()
    client.force_login(owner)
    page = client.get(reverse("ui:project", args=(org.slug, project.pk))).content.decode()
    found = re.search(r'data-histogram-sources="([^"]*)"', page)
    assert found and found.group(1).split() == ["example-logs"]  # not logzio-logs

    tabs = re.findall(
        r'<a href="\?tab=(\w+)" role="tab" id="tab-\1" aria-controls="panel-\1"'
        r'[^>]*tabindex="(-?\d)"',
        page,
    )
    assert tabs == [("configuration", "0"), ("logs", "-1"), ("plugins", "-1")]
    for name in ("configuration", "logs", "plugins"):
        assert f'id="panel-{name}" role="tabpanel" aria-labelledby="tab-{name}"' in page
