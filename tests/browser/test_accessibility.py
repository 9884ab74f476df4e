"""Every page of the product, as the users who see it, through axe-core: no critical or
serious violation (``conftest.axe_blocking``). The landing page, the project list, the
project page's tabs, the bind form, the catalog, the admin (index, every change list and
change page of the plugin models, the install wizard's steps, the registry, the supply-chain
pages), and the API's browsable root, Swagger UI and ReDoc.

Also the layout at the two widths an operator and an owner use: at 1366 px the installed
plugins list shows Status, Health and Runs without sideways scrolling; at 390 px the project
pages' tables stack (the document is no wider than the window).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from imbi.core.models import Membership, Organization, Project, ProjectType, Role
from plugins_core.models import (
    IndexedArtifact,
    InstalledDistribution,
    Plugin,
    PluginIndex,
    PluginPolicy,
    ProjectPlugin,
    ProjectTypePlugin,
    ThirdPartyService,
)
from plugins_core.provisioning.demo import seed_plugins

from .conftest import axe_blocking, chromium

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def site(settings: Any, tmp_path: Path, django_user_model: Any, live_server: Any) -> dict[str, Any]:
    settings.DATA_DIR = tmp_path
    org = Organization.objects.create(slug="acme", name="Acme")
    project_type = ProjectType.objects.create(organization=org, slug="api", name="HTTP API")
    project = Project.objects.create(
        organization=org, project_type=project_type, slug="billing", name="Billing"
    )
    seed_plugins(org)
    owner = django_user_model.objects.create_user("owner", password="owner-pw")
    Membership.objects.create(user=owner, organization=org, role=Role.OWNER)
    project.owners.add(owner)
    django_user_model.objects.create_superuser("operator", "op@example.com", "operator-pw")
    type_binding = ProjectTypePlugin.objects.filter(project_type=project_type).first()
    assert type_binding is not None
    plugin = type_binding.plugin
    binding = ProjectPlugin.objects.create(
        organization=org, project=project, plugin=plugin, tab=type_binding.tab
    )
    changes = {
        "plugin": plugin.pk,
        "thirdpartyservice": plugin.service_id,
        "projecttypeplugin": type_binding.pk,
        "projectplugin": binding.pk,
        "organization": org.pk,
        "projecttype": project_type.pk,
        "project": project.pk,
    }
    return {
        "base": live_server.url,
        "project": project,
        "binding": binding,
        "changes": changes,
        "models": [
            m._meta.model_name
            for m in (
                Plugin,
                ThirdPartyService,
                ProjectTypePlugin,
                ProjectPlugin,
                InstalledDistribution,
                PluginIndex,
                IndexedArtifact,
                PluginPolicy,
            )
        ],
    }


def login(page: Any, base: str, username: str, password: str, then: str) -> None:
    page.goto(f"{base}/accounts/login/?next={then}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{then}")


def audit(
    page: Any, url: str, found: list[str], ready: str | None = None, *, optional: bool = False
) -> None:
    """Load ``url`` (an ``optional`` page may not exist: an admin with no add view), wait for
    ``ready`` and add its violations to ``found``."""
    response = page.goto(url)
    assert response is not None
    if optional and response.status in (403, 404):
        return
    if response.status >= 400:
        found.append(f"{url}: HTTP {response.status}")
        return
    if ready:
        page.wait_for_selector(ready)
    found.extend(axe_blocking(page))


def test_every_page_has_no_serious_accessibility_violation(site: dict[str, Any]) -> None:
    base = site["base"]
    project: Project = site["project"]
    project_path = f"/projects/acme/{project.pk}/"
    found: list[str] = []
    with chromium() as page:
        # the project owner's pages
        audit(page, f"{base}/", found)
        login(page, base, "owner", "owner-pw", "/projects/")
        audit(page, f"{base}/projects/", found)
        for tab in ("configuration", "logs", "plugins"):
            audit(page, f"{base}{project_path}?tab={tab}", found, f"#panel-{tab}")
            page.wait_for_load_state("networkidle")  # the tab's rows, fetched by its script
            found.extend(axe_blocking(page))
        # the bind form with its errors shown
        page.select_option("#id_plugin", value="local-logs")
        page.fill("#id_search_template", "${nope}")
        page.click("#add-binding button[type=submit]")
        page.wait_for_selector("#add-binding .error")
        found.extend(axe_blocking(page))
        audit(page, f"{base}{project_path}bindings/{site['binding'].pk}/", found)
        audit(page, f"{base}/catalog/", found)
        audit(page, f"{base}/catalog/local-config/", found)
        audit(page, f"{base}/catalog/local-config/readme/", found)
        audit(page, f"{base}/api/", found)
        audit(page, f"{base}/api/docs/", found, ".swagger-ui .information-container .title")
        audit(page, f"{base}/api/redoc/", found, ".api-content h1")
        page.context.clear_cookies()  # log out

        # the operator's admin
        page.goto(f"{base}/admin/login/?next=/admin/")
        page.fill("#id_username", "operator")
        page.fill("#id_password", "operator-pw")
        page.click("input[type=submit]")
        page.wait_for_url(f"{base}/admin/")
        found.extend(axe_blocking(page))
        audit(page, f"{base}/admin/plugins_core/", found)
        for model in site["models"]:
            audit(page, f"{base}/admin/plugins_core/{model}/", found)
            audit(page, f"{base}/admin/plugins_core/{model}/add/", found, optional=True)
        for model, pk in site["changes"].items():
            app = "core" if model in ("organization", "projecttype", "project") else "plugins_core"
            audit(page, f"{base}/admin/{app}/{model}/{pk}/change/", found)
        audit(page, f"{base}/admin/plugins_core/plugin/registry/", found)
        audit(page, f"{base}/admin/plugins_core/pluginindex/install/", found)

        # the install wizard, step by step, for the GitHub plugin
        audit(page, f"{base}/admin/plugins_core/plugin/install/", found)
        page.locator("input[name=entry_point]").first.check()
        page.click("input[value=Next]")
        for _ in range(6):
            page.wait_for_load_state()
            found.extend(axe_blocking(page))
            required = page.locator("input[required][type=text], input[required]:not([type])")
            for field in required.all():
                if not field.input_value():
                    field.fill("x")
            for field in page.locator("input[required][type=password]").all():
                field.fill("secret-value")
            if page.locator("input[name=mode][value=template]").count():
                page.check("input[name=mode][value=template]")
            nxt = page.locator("input[value=Next]")
            if not nxt.count():
                break
            nxt.click()
    assert not found, "\n".join(sorted(set(found)))


_WIDE = """() => Array.from(document.querySelectorAll("body *"))
  .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
  .slice(-6)
  .map((e) => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"""


def _fits(page: Any) -> tuple[int, int, list[str]]:
    """The document's width, the window's, and the elements reaching past the window."""
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    return widths[0], widths[1], page.evaluate(_WIDE)


def test_plugin_list_shows_status_first_and_project_tables_stack_on_a_phone(
    site: dict[str, Any],
) -> None:
    base = site["base"]
    project: Project = site["project"]
    project_path = f"/projects/acme/{project.pk}/"
    with chromium() as page:
        # an operator at 1366 px: Status, Health and Runs right after the plugin's name,
        # each within the window
        page.set_viewport_size({"width": 1366, "height": 900})
        page.goto(f"{base}/admin/login/?next=/admin/plugins_core/plugin/")
        page.fill("#id_username", "operator")
        page.fill("#id_password", "operator-pw")
        page.click("input[type=submit]")
        page.wait_for_url(f"{base}/admin/plugins_core/plugin/")
        headers = [h.strip() for h in page.locator("#result_list thead th").all_inner_texts()]
        assert headers[2:5] == ["STATUS", "HEALTH", "RUNS"] or headers[2:5] == [
            "Status",
            "Health",
            "Runs",
        ], headers
        width = page.evaluate("() => window.innerWidth")
        for column in ("column-handler_status", "column-health_badge", "column-runs"):
            box = page.locator(f"#result_list th.{column}").bounding_box()
            assert box is not None and box["x"] + box["width"] <= width, (column, box)
        page.context.clear_cookies()

        # a project owner on a 390 px phone: every project page fits the window
        page.set_viewport_size({"width": 390, "height": 844})
        login(page, base, "owner", "owner-pw", "/projects/")
        scroll_width, inner, wide = _fits(page)
        assert scroll_width <= inner, ("/projects/", scroll_width, inner, wide)
        for tab in ("configuration", "logs", "plugins"):
            page.goto(f"{base}{project_path}?tab={tab}")
            page.wait_for_selector(f"#panel-{tab}")
            page.wait_for_load_state("networkidle")
            scroll_width, inner, wide = _fits(page)
            assert scroll_width <= inner, (tab, scroll_width, inner, wide)
        page.goto(f"{base}{project_path}bindings/{site['binding'].pk}/")
        scroll_width, inner, wide = _fits(page)
        assert scroll_width <= inner, ("binding", scroll_width, inner, wide)
