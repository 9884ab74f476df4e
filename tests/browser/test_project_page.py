"""The project page in a real browser, on the built-in local plugins (seeded like the demo):
errors where the action happened, confirmations, configuration add/edit, log filter errors,
no stale "Load more", the histogram; the catalog's filters; the done page binds a sibling.
Screenshots go to artifacts/screenshots/; with ``IMBI_UPDATE_DOC_SCREENSHOTS=1`` they replace
docs/screenshots/ so the docs show the current pages (a plain test run leaves the tree clean)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from imbi.core.models import Membership, Organization, Project, ProjectType, Role
from plugins_core.models import ProjectPlugin
from plugins_core.provisioning.demo import seed_plugins

from .conftest import chromium

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
DOCS = (
    ROOT / "docs" / "screenshots"
    if os.environ.get("IMBI_UPDATE_DOC_SCREENSHOTS") == "1"
    else ROOT / "artifacts" / "screenshots"
)


def orm(call: Any) -> Any:
    """Run an ORM call from inside a Playwright block (in another thread: Playwright's loop
    makes this one async, and the transactional test database is shared)."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    def run() -> Any:
        try:
            return call()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def bindings(project: Project) -> int:
    return int(orm(lambda: ProjectPlugin.objects.filter(project=project).count()))


def docs_shot(page: Any, name: str) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / f"{name}.png"), full_page=False)


@pytest.fixture
def site(settings: Any, tmp_path: Path, django_user_model: Any, live_server: Any) -> dict[str, Any]:
    settings.DATA_DIR = tmp_path
    org = Organization.objects.create(slug="acme", name="Acme")
    project_type = ProjectType.objects.create(organization=org, slug="api", name="HTTP API")
    project = Project.objects.create(
        organization=org, project_type=project_type, slug="billing", name="Billing"
    )
    seed_plugins(org)
    owner = django_user_model.objects.create_user("owner", password="owner-pw", is_staff=True)
    Membership.objects.create(user=owner, organization=org, role=Role.ADMIN)
    project.owners.add(owner)
    return {
        "base": live_server.url,
        "project_url": f"{live_server.url}/projects/acme/{project.pk}/",
        "project": project,
    }


def login(page: Any, base: str, then: str) -> None:
    page.goto(f"{base}/accounts/login/?next={then}")
    page.fill("#id_username", "owner")
    page.fill("#id_password", "owner-pw")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{then}")


def test_bind_error_shows_on_the_plugins_tab_and_unbind_asks_first(site: dict[str, Any]) -> None:
    project: Project = site["project"]
    path = site["project_url"].removeprefix(site["base"])
    with chromium() as page:
        login(page, site["base"], path)
        page.click(".tab[data-panel=plugins]")
        assert "tab=plugins" in page.url
        page.select_option("#id_plugin", value="local-logs")
        page.fill("#id_search_template", "${nope}")
        page.click("#add-binding button[type=submit]")
        page.wait_for_load_state()
        assert page.locator("#panel-plugins").is_visible()
        assert not page.locator("#panel-configuration").is_visible()
        error = page.locator("#add-binding .error").first
        assert error.is_visible() and "unknown variable ${nope}" in error.inner_text()

        # Override (creates a project binding) asks first; dismissing changes nothing.
        messages: list[str] = []
        page.once("dialog", lambda dialog: (messages.append(dialog.message), dialog.dismiss()))
        page.locator("button", has_text="Override").first.click()
        page.wait_for_timeout(300)
        assert messages and messages[0].startswith("Override local-")
        assert bindings(project) == 0
        page.once("dialog", lambda dialog: dialog.accept())
        page.locator("button", has_text="Override").first.click()
        page.wait_for_selector("text=Option overrides")
        page.goto(f"{site['project_url']}?tab=plugins")
        assert bindings(project) == 1

        # Reset/Unbind asks for confirmation on its own page (how many projects and
        # bindings); "take me back" keeps the binding, "Yes" removes it.
        page.locator("a.danger", has_text="Reset").click()
        page.wait_for_selector("text=No, take me back")
        assert "binding" in page.locator(".impact").inner_text()
        page.locator("a", has_text="No, take me back").click()
        page.wait_for_url("**?tab=plugins")
        assert bindings(project) == 1
        page.locator("a.danger", has_text="Reset").click()
        page.locator("button.danger", has_text="Yes, unbind").click()
        page.wait_for_url("**?tab=plugins")
        assert page.locator("#panel-plugins").is_visible()
        assert bindings(project) == 0
        assert page.locator(".badge.default").count() >= 1
        docs_shot(page, "project-plugins")


def test_configuration_key_added_and_edited(site: dict[str, Any]) -> None:
    path = site["project_url"].removeprefix(site["base"])
    with chromium() as page:
        login(page, site["base"], path)
        page.wait_for_selector("tr[data-key]")
        assert "Default source:" in page.inner_text("[data-default-marker=configuration]")
        page.fill("[data-form=config] input[name=key]", "FEATURE_FLAG")
        page.select_option("[data-form=config] select[name=data_type]", "string")
        page.fill("[data-form=config] input[name=value]", "on")
        page.click("[data-config-submit]")
        page.wait_for_selector("tr[data-key=FEATURE_FLAG]")
        assert "on" in page.inner_text("tr[data-key=FEATURE_FLAG] td.value")
        page.locator("tr[data-key=FEATURE_FLAG] button", has_text="Edit").click()
        assert page.input_value("[data-form=config] input[name=key]") == "FEATURE_FLAG"
        page.fill("[data-form=config] input[name=value]", "off")
        page.click("[data-config-submit]")
        page.wait_for_function(
            "() => (document.querySelector('tr[data-key=FEATURE_FLAG] td.value') || {})"
            ".textContent === 'off'"
        )
        # A value that is not of its type is the API's field error, next to the value.
        page.fill("[data-form=config] input[name=key]", "WORKERS")
        page.select_option("[data-form=config] select[name=data_type]", "number")
        page.fill("[data-form=config] input[name=value]", "many")
        page.click("[data-config-submit]")
        error = page.locator("[data-field-error=value]")
        error.wait_for(state="visible")
        assert error.inner_text().strip() != ""
        assert page.locator("tr[data-key=WORKERS]").count() == 0
        docs_shot(page, "project-configuration")
        # A secret value is typed like a password, never in clear text.
        value = page.locator("[data-form=config] input[name=value]")
        assert value.get_attribute("type") == "text"
        page.check("[data-form=config] input[name=secret]")
        assert value.get_attribute("type") == "password"
        page.uncheck("[data-form=config] input[name=secret]")
        assert value.get_attribute("type") == "text"
        page.select_option("[data-form=config] select[name=data_type]", "secret")
        assert value.get_attribute("type") == "password"


def test_tabs_follow_the_arrow_keys(site: dict[str, Any]) -> None:
    """WAI-ARIA tabs: one tab stop; Right/Left/Home/End move to another tab and open it."""
    path = site["project_url"].removeprefix(site["base"])
    with chromium() as page:
        login(page, site["base"], path)
        first = page.locator("#tab-configuration")
        assert first.get_attribute("tabindex") == "0"
        assert page.locator("#tab-logs").get_attribute("tabindex") == "-1"
        assert first.get_attribute("aria-controls") == "panel-configuration"
        first.focus()
        page.keyboard.press("ArrowRight")
        assert page.evaluate("document.activeElement.id") == "tab-logs"
        assert page.locator("#panel-logs").is_visible()
        assert page.locator("#tab-logs").get_attribute("aria-selected") == "true"
        page.keyboard.press("End")
        assert page.evaluate("document.activeElement.id") == "tab-plugins"
        assert page.locator("#panel-plugins").is_visible()
        page.keyboard.press("ArrowRight")  # wraps around
        assert page.evaluate("document.activeElement.id") == "tab-configuration"
        page.keyboard.press("ArrowLeft")
        assert page.evaluate("document.activeElement.id") == "tab-plugins"
        page.keyboard.press("Home")
        assert page.locator("#panel-configuration").is_visible()
        assert page.locator("#tab-configuration").get_attribute("tabindex") == "0"


def test_bad_filter_shows_the_field_message_and_no_stale_load_more(site: dict[str, Any]) -> None:
    path = site["project_url"].removeprefix(site["base"])
    with chromium() as page:
        login(page, site["base"], f"{path}?tab=logs")
        page.select_option("[data-form=logs] select[name=range]", "1440")
        page.click("[data-form=logs] button[type=submit]")
        page.wait_for_selector("[data-action=more-logs]:not([hidden])")
        page.wait_for_selector("[data-histogram]:not([hidden])")
        caption = page.inner_text("[data-histogram-caption]")
        assert " entries from " in caption and " to " in caption
        docs_shot(page, "project-logs")
        page.fill("[data-form=logs] textarea[name=filter]", "not-a-filter")
        page.click("[data-form=logs] button[type=submit]")
        error = page.locator("[data-field-error=filter]")
        error.wait_for(state="visible")
        assert "expected field:op:value" in error.inner_text()
        assert page.locator("[data-action=more-logs]").is_hidden()
        assert page.locator("[data-problem=logs]").is_hidden()


def test_catalog_filters_by_type_and_search(site: dict[str, Any]) -> None:
    with chromium() as page:
        login(page, site["base"], "/catalog/")
        visible = page.locator(".catalog-card:visible")
        total = visible.count()
        assert total >= 6
        page.click("[data-catalog-type=logs]")
        types = {c.get_attribute("data-type") for c in visible.all()}
        assert types == {"logs"} and visible.count() < total
        page.fill("[data-catalog-search]", "cloudwatch")
        assert [c.get_attribute("data-entry") for c in visible.all()] == ["aws-cloudwatch-logs"]
        page.click("[data-catalog-type='']")
        page.fill("[data-catalog-search]", "zzzz-nothing")
        assert visible.count() == 0 and page.locator("[data-catalog-empty]").is_visible()
        page.fill("[data-catalog-search]", "")
        local = page.locator(".catalog-card[data-entry=local-logs]")
        assert local.locator(".installed").count() == 1
        docs_shot(page, "catalog")
        local.locator("a.card-details").click()
        page.wait_for_selector("text=Entry point")
        assert "local-logs" in page.inner_text(".catalog-detail")
