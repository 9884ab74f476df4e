"""End to end in chromium against moto: an operator installs the AWS plugins with the admin
wizard; a project owner reads SSM parameters and CloudWatch log lines on the project page.

Screenshots land in ``artifacts/`` (git-ignored).
"""

from __future__ import annotations

from typing import Any

import pytest

from imbi.core.models import AuditEvent, Membership, Organization, Project, ProjectType, Role
from plugins_core.models import Plugin, ProjectPlugin, ProjectTypePlugin, ServiceApplication
from plugins_core.provisioning import bindings as binding_service
from plugins_core.provisioning.install import install_from_template

from .conftest import (
    ACCESS_KEY_ID,
    LOG_LINES,
    SECRET_ACCESS_KEY,
    SECURE_VALUE,
    chromium,
    shot,
)
from .test_project_page import docs_shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TEMPLATE = "/${org}/${project}/"


def wait(page: Any, selector: str, panel: str) -> None:
    """Wait for ``selector``; on timeout fail with what the panel shows (its problem box)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_selector(selector)
    except PlaywrightTimeout:
        shot(page, f"failed-{panel}")
        pytest.fail(
            f"{selector} did not appear; the {panel} panel shows: "
            f"{page.inner_text(f'#panel-{panel}')[:1500]}"
        )


def make_project() -> tuple[Organization, ProjectType, Project]:
    org = Organization.objects.create(slug="acme", name="Acme")
    project_type = ProjectType.objects.create(organization=org, slug="api", name="API")
    project = Project.objects.create(
        organization=org, project_type=project_type, slug="billing", name="Billing"
    )
    return org, project_type, project


def test_operator_installs_aws_with_the_wizard(
    live_server: Any, moto_aws: dict[str, Any], django_user_model: Any
) -> None:
    org, project_type, _ = make_project()
    django_user_model.objects.create_superuser("operator", "op@example.com", "operator-pw")
    base = live_server.url

    with chromium() as page:
        page.goto(f"{base}/admin/login/?next=/admin/plugins_core/")
        page.fill("#id_username", "operator")
        page.fill("#id_password", "operator-pw")
        page.click("input[type=submit]")
        page.click("text=Install a plugin")

        # 1. the plugin and the organization
        page.check("#ep-aws-ssm")
        # one organization: preselected, no "---------" to choose from
        assert page.locator("select#id_organization").count() == 0
        assert "Installing into Acme" in page.inner_text("#content-main")
        shot(page, "wizard-1-plugin")
        docs_shot(page, "wizard-1-catalog")
        page.click("input[value=Next]")

        # 2. one-click template install; the endpoint override points at moto
        page.check("input[name=mode][value=template]")
        page.select_option("#id_region", moto_aws["region"])
        page.fill("#id_base_url", moto_aws["url"])
        page.click("input[value=Next]")

        # 3. credentials (write-only)
        page.fill("#id_access_key_id", ACCESS_KEY_ID)
        page.fill("#id_secret_access_key", SECRET_ACCESS_KEY)
        page.click("input[value=Next]")
        # 4. options: the defaults
        page.click("input[value=Next]")

        # 5. test the connection against moto, for the sample project's path
        page.select_option("#id_sample_project", label="Billing")
        page.fill("#id_search_template", TEMPLATE)
        page.click("button[value=test]")
        page.wait_for_selector("#connection-result .connection.ok")
        result = page.inner_text("#connection-result")
        assert result.startswith("ok"), result
        assert "/acme/billing/" in result
        assert SECRET_ACCESS_KEY not in page.content()
        shot(page, "wizard-5-test-connection")
        page.click("input[value=Next]")

        # 6. bind to the project type, with the live preview of the template
        page.check(f"input[name=project_types][value='{project_type.pk}']")
        page.check("#id_default")
        page.fill("#id_search_template", "/${org}/${nope}/")
        page.wait_for_selector("#template-preview.error")
        page.fill("#id_search_template", TEMPLATE)
        page.select_option("#id_sample_project", label="Billing")
        page.wait_for_function(
            "() => document.getElementById('template-preview').textContent === '/acme/billing/'"
        )
        shot(page, "wizard-6-bind")
        page.click("input[value=Next]")

        # 7. review, then install in one transaction
        summary = page.inner_text("table.summary")
        assert "Secret access key: will be set" in summary and SECRET_ACCESS_KEY not in summary
        shot(page, "wizard-7-review")
        page.click("input[value=Install]")
        page.wait_for_selector("text=is installed in Acme")
        shot(page, "wizard-done")

        # the done page offers to bind the template's sibling (CloudWatch after SSM)
        sibling = page.locator("form.sibling[data-sibling=aws-cloudwatch-logs]")
        assert sibling.count() == 1
        assert sibling.locator(
            f"input[name$=project_types][value='{project_type.pk}']"
        ).is_checked()
        sibling.locator("input[name$=search_template]").fill("/ecs/${project}")
        docs_shot(page, "wizard-done-siblings")
        sibling.locator("input[type=submit]").click()
        page.wait_for_selector("text=Bound aws-cloudwatch-logs to API")
        assert page.locator("form.sibling").count() == 0
        assert page.locator("a", has_text="Open a project that uses it").count() == 1

        # the registry page lists every entry point, with the new plugins enabled
        page.click("text=Plugin registry")
        registry_text = page.inner_text("table.registry-table")
        assert "aws-ssm" in registry_text and "import failed" in registry_text
        assert "enabled" in registry_text
        shot(page, "admin-registry")

    plugin = Plugin.objects.get(organization=org, handler="aws-ssm")
    service = plugin.service
    assert service.settings["base_url"] == moto_aws["url"]
    assert service.settings["region"] == "us-east-1"
    assert ServiceApplication.objects.get(service=service).credentials == {
        "access_key_id": ACCESS_KEY_ID,
        "secret_access_key": SECRET_ACCESS_KEY,
    }
    logs_plugin = Plugin.objects.get(service=service, handler="aws-cloudwatch-logs")
    logs_binding = ProjectTypePlugin.objects.get(project_type=project_type, plugin=logs_plugin)
    assert (logs_binding.tab, logs_binding.search_template) == ("logs", "/ecs/${project}")
    binding = ProjectTypePlugin.objects.get(project_type=project_type, plugin=plugin)
    assert (binding.tab, binding.default, binding.search_template) == (
        "configuration",
        True,
        TEMPLATE,
    )
    assert AuditEvent.objects.filter(action=AuditEvent.Action.CREDENTIALS_SET).exists()


def test_project_owner_sees_parameters_and_log_lines(
    live_server: Any, moto_aws: dict[str, Any], django_user_model: Any
) -> None:
    org, project_type, project = make_project()
    result = install_from_template(org, "aws-ssm")
    service = result.service
    service.settings = {
        **service.settings,
        "base_url": moto_aws["url"],
        "region": moto_aws["region"],
    }
    service.save()
    ServiceApplication.objects.create(
        service=service,
        credentials={"access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY},
    )
    ssm = next(p for p in result.plugins if p.handler == "aws-ssm")
    binding_service.create_type_binding(
        project_type, {"plugin": ssm.slug, "default": True, "search_template": TEMPLATE}, None
    )
    owner = django_user_model.objects.create_user("owner", password="owner-pw")
    Membership.objects.create(user=owner, organization=org, role=Role.OWNER)
    project.owners.add(owner)
    django_user_model.objects.create_superuser("operator", "op@example.com", "operator-pw")
    base = live_server.url
    project_url = f"{base}/projects/acme/{project.pk}/"

    with chromium() as page:
        page.goto(project_url)  # login required: the members' login page
        page.fill("#id_username", "owner")
        page.fill("#id_password", "owner-pw")
        page.click("button[type=submit]")
        page.wait_for_url(project_url)

        # Configuration: String values shown, the SecureString masked, no Reveal button
        wait(page, "tr[data-key='DB_HOST']", "configuration")
        assert "db.internal" in page.inner_text("tr[data-key='DB_HOST']")
        assert "5432" in page.inner_text("tr[data-key='DB_PORT']")
        secret_row = page.locator("tr[data-key='DB_PASSWORD']")
        assert secret_row.locator(".masked").count() == 1
        assert secret_row.locator("button", has_text="Reveal").count() == 0
        assert page.locator("tr[data-key='OTHER']").count() == 0
        assert SECURE_VALUE not in page.content()
        shot(page, "project-configuration")

        # the owner binds CloudWatch Logs to their own project's Logs tab
        page.click(".tab[data-panel=plugins]")
        page.select_option("#id_plugin", value="aws-cloudwatch-logs")
        page.fill("#id_search_template", "/ecs/${project}")
        page.check("#id_default")
        page.click("#add-binding button[type=submit]")
        page.wait_for_selector("text=Option overrides")
        page.wait_for_function(
            "() => document.querySelector('output.preview').textContent === '/ecs/billing'"
        )
        shot(page, "project-binding")
        page.click("text=Save")
        page.wait_for_url(f"{project_url}?tab=plugins")  # back where the action happened
        assert page.locator("#panel-plugins").is_visible()

        # Logs: the last hour, then "load more" through the cursor, then a level filter.
        # CloudWatch declares no histogram: the page must not ask for one (a 501 in the
        # console otherwise).
        histograms: list[str] = []
        errors: list[str] = []
        page.on("request", lambda r: histograms.append(r.url) if "/histogram" in r.url else None)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.click(".tab[data-panel=logs]")
        wait(page, ".logs-table tbody tr.level-info", "logs")
        assert page.locator(".logs-table tbody tr").count() == 50
        assert "GET /invoices/" in page.inner_text(".logs-table tbody")
        more = page.locator("[data-action=more-logs]")
        for _ in range(5):  # the backend may hand out a last, empty page
            if more.is_hidden():
                break
            more.click()
            page.wait_for_function(
                "() => !document.querySelector('[data-action=more-logs]').disabled"
            )
        assert more.is_hidden(), page.inner_text("#panel-logs")[-1500:]
        assert page.locator(".logs-table tbody tr").count() == LOG_LINES
        shot(page, "project-logs")
        # level and field filters travel to the API; moto ignores JSON filter patterns, so
        # the rows are narrowed by the regex filter, which the plugin re-checks itself
        page.check("input[name=level][value=error]")
        page.fill("textarea[name=filter]", "path:regex:/invoices/[0-9]*0$")
        with page.expect_response(lambda r: "/logs?" in r.url) as answer:
            page.click("form[data-form=logs] button[type=submit]")
        sent = answer.value.url
        assert "level=error" in sent and "filter=path%3Aregex%3A" in sent, sent
        try:
            page.wait_for_function(
                "() => document.querySelectorAll('.logs-table tbody tr').length === "
                f"{LOG_LINES // 10}"
            )
        except Exception:
            pytest.fail(page.inner_text("#panel-logs")[-2500:])
        levels = page.locator(".logs-table tbody td.level").all_inner_texts()
        assert set(levels) == {"error"}
        shot(page, "project-logs-errors")
        assert histograms == [] and errors == [], (histograms, errors)

        # an operator may reveal the SecureString: an explicit click, audited by the API
        page.click("button.link:has-text('Log out')")
        page.goto(project_url)
        page.fill("#id_username", "operator")
        page.fill("#id_password", "operator-pw")
        page.click("button[type=submit]")
        page.wait_for_selector("tr[data-key='DB_PASSWORD'] button:has-text('Reveal')")
        assert SECURE_VALUE not in page.content()
        page.click("tr[data-key='DB_PASSWORD'] button:has-text('Reveal')")
        page.wait_for_selector("tr[data-key='DB_PASSWORD'] code.revealed")
        assert SECURE_VALUE in page.inner_text("tr[data-key='DB_PASSWORD']")
        shot(page, "project-revealed")

    logs_binding = ProjectPlugin.objects.get(project=project, plugin__handler="aws-cloudwatch-logs")
    assert (logs_binding.default, logs_binding.search_template) == (True, "/ecs/${project}")
    reads = AuditEvent.objects.filter(action=AuditEvent.Action.SECRET_READ)
    assert [(e.actor_name, e.key) for e in reads] == [("operator", "DB_PASSWORD")]
