"""``/`` (landing page with install health), ``/api/`` (roots) and browsable API errors."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from imbi.core.models import Organization, Role
from plugins_core.models import Plugin, ServiceApplication, ThirdPartyService
from plugins_core.serving import health

pytestmark = pytest.mark.django_db


def test_landing_page_links_and_health_for_anonymous(client: Client) -> None:
    page = client.get("/")
    assert page.status_code == 200
    html = page.content.decode()
    for href in ("/projects/", "/admin/", "/api/", "/api/docs/", "/catalog/", "/healthz"):
        assert f'href="{href}"' in html, href
    assert re.search(r'data-status="ok">ok</span>', html)  # the database
    assert "Log in" in html and "<script>" not in html and "style=" not in html


def test_landing_page_counts_badges_of_the_users_plugins(
    org: Organization, other_org: Organization, make_member: Any
) -> None:
    service = ThirdPartyService.objects.create(organization=org, vendor="x", name="X", slug="x")
    ServiceApplication.objects.create(service=service, credentials={"api_token": "bad"})
    plugin = Plugin.objects.create(
        organization=org,
        service=service,
        slug="cfg",
        plugin_type="configuration",
        handler="example-config",
    )
    theirs = ThirdPartyService.objects.create(
        organization=other_org, vendor="y", name="Y", slug="y"
    )
    Plugin.objects.create(
        organization=other_org,
        service=theirs,
        slug="t",
        plugin_type="configuration",
        handler="example-config",
    )
    health.check_connection(plugin, trigger="api")
    client = Client()
    client.force_login(make_member(org, Role.VIEWER))
    html = client.get("/").content.decode()
    assert re.findall(r'data-status="(connection_failed|credentials_missing|untested)"', html) == [
        "connection_failed"
    ]


def test_api_root_lists_the_roots_without_login(client: Client) -> None:
    response = client.get("/api/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    body = response.json()
    assert body["docs"] == "http://testserver/api/docs/"
    assert body["organizations"] == "http://testserver/api/orgs"
    assert body["per_organization"]["services"] == "http://testserver/api/orgs/{org}/services"


def test_browsable_api_renders_problems_as_html(client: Client, org: Organization) -> None:
    html = client.get("/api/orgs/acme/projects", HTTP_ACCEPT="text/html")
    assert html.status_code == 401
    assert html["Content-Type"].startswith("text/html")
    assert "not_authenticated" in html.content.decode()
    json = client.get("/api/orgs/acme/projects", HTTP_ACCEPT="application/json")
    assert json.status_code == 401
    assert json["Content-Type"] == "application/problem+json"


def test_catalog_grid_and_detail(client: Client, org: Organization, make_member: Any) -> None:
    from plugins_core.provisioning.install import install_from_template

    install_from_template(org, "aws-ssm")
    client.force_login(make_member(org, Role.VIEWER))
    html = client.get("/catalog/").content.decode()
    cards = re.findall(
        r'<li class="catalog-card" data-type="(\w+)"[^>]*data-entry="([\w-]+)"', html
    )
    assert ("configuration", "aws-ssm") in cards and ("logs", "aws-cloudwatch-logs") in cards
    aws_card = html[html.index('data-entry="aws-ssm"') :].split("</li>")[0]
    assert "<svg" in aws_card and "installed" in aws_card
    github_card = html[html.index('data-entry="github-actions"') :].split("</li>")[0]
    assert "installed" not in github_card
    detail = client.get("/catalog/aws-ssm/").content.decode()
    for fact in ("Parameter Store", "network:", "Access key ID", "acme/aws-ssm", "Console"):
        assert fact in detail, fact
    assert client.get("/catalog/no-such-plugin/").status_code == 404
