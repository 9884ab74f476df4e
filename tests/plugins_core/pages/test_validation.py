"""Early validation: manifest patterns, bounds, choices and "together" rules of the catalog
plugins refuse bad input at the wizard step, the admin form and the API where it is entered,
naming the field, before any connection test."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from imbi.core.models import Organization, Role
from plugins_core.models import ServiceApplication, ThirdPartyService
from plugins_core.provisioning.install import install_from_template
from tests.plugins_core.pages.test_wizard import start, step_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(django_user_model: Any, org: Organization) -> Client:
    user = django_user_model.objects.create_superuser("operator", "op@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def field_errors(response: Any) -> str:
    return " ".join(
        re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S)
    )


def test_wizard_refuses_an_aws_key_id_without_its_secret_and_a_bad_region(
    operator: Client, org: Organization
) -> None:
    pid = start(operator, org, "aws-ssm")
    response = operator.post(step_url(pid, "service"), {"mode": "template", "region": "mars-1"})
    assert response.status_code == 200
    assert "Select a valid choice" in field_errors(response)
    page = operator.get(step_url(pid, "service")).content.decode()
    assert '<option value="eu-west-1"' in page  # the region is a select from the manifest
    response = operator.post(step_url(pid, "service"), {"mode": "template", "region": "eu-west-1"})
    assert response.status_code == 302
    response = operator.post(
        step_url(pid, "credentials"), {"access_key_id": "AKIAABCDEFGHIJKLMNOP"}
    )
    assert response.status_code == 200
    errors = field_errors(response)
    assert "is required together with access_key_id" in errors
    response = operator.post(
        step_url(pid, "credentials"),
        {"access_key_id": "not-a-key", "secret_access_key": "s3cr3t-value-for-test"},
    )
    assert "must look like AKIA or ASIA" in field_errors(response)
    assert "not-a-key" not in field_errors(response)
    response = operator.post(
        step_url(pid, "credentials"),
        {"access_key_id": "AKIAABCDEFGHIJKLMNOP", "secret_access_key": "s3cr3t-value-for-test"},
    )
    assert response.status_code == 302


def test_wizard_refuses_a_logzio_region_mars(operator: Client, org: Organization) -> None:
    pid = start(operator, org, "logzio")
    response = operator.post(step_url(pid, "service"), {"mode": "template", "region": "mars"})
    assert response.status_code == 200
    assert "Select a valid choice" in field_errors(response)
    ok = operator.post(step_url(pid, "service"), {"mode": "template", "region": "eu"})
    assert ok.status_code == 302


def test_wizard_refuses_a_github_repository_that_is_not_owner_slash_repo(
    operator: Client, org: Organization
) -> None:
    pid = start(operator, org, "github-actions")
    operator.post(step_url(pid, "service"), {"mode": "template"})
    operator.post(step_url(pid, "credentials"), {"token": "ghp_validation0123456789abcdefABCDEF"})
    response = operator.post(step_url(pid, "options"), {"repository": "not a repo"})
    assert response.status_code == 200
    assert "must look like owner/repo" in field_errors(response)
    assert (
        operator.post(step_url(pid, "options"), {"repository": "acme/billing"}).status_code == 302
    )


def test_local_directory_must_be_absolute_without_dotdot(
    operator: Client, org: Organization
) -> None:
    pid = start(operator, org, "local-logs")
    response = operator.post(
        step_url(pid, "service"), {"mode": "template", "directory": "../../etc"}
    )
    assert response.status_code == 200
    assert "an absolute path without" in field_errors(response)
    response = operator.post(
        step_url(pid, "service"), {"mode": "template", "directory": "/var/log/../../etc"}
    )
    assert "an absolute path without" in field_errors(response)


def test_local_connection_test_names_the_directory_and_the_root(
    tmp_path: Any, monkeypatch: Any
) -> None:
    from imbi_plugin_local.logs import LocalLogs, checked_directory
    from imbi_plugin_sdk import Credentials, InvalidInput
    from imbi_plugin_sdk.testkit import make_context

    missing = tmp_path / "nope"
    handler = LocalLogs(make_context(service_settings={"directory": str(missing)}), Credentials())
    assert handler.test_connection().message == f"the log directory {missing} does not exist"
    monkeypatch.setenv("IMBI_LOCAL_LOGS_ROOT", str(tmp_path / "root"))
    with pytest.raises(InvalidInput) as caught:
        checked_directory("/etc")
    assert caught.value.detail == (
        f"the log directory /etc is outside the allowed root {tmp_path / 'root'} "
        "($IMBI_LOCAL_LOGS_ROOT)"
    )


def test_admin_service_form_is_generated_from_the_manifest(
    operator: Client, org: Organization
) -> None:
    service = install_from_template(org, "aws-ssm").service
    url = reverse("admin:plugins_core_thirdpartyservice_change", args=[service.pk])
    page = operator.get(url).content.decode()
    assert 'name="region"' in page and '<option value="eu-west-1"' in page
    assert 'name="settings"' not in page
    form = {
        "organization": org.pk,
        "name": service.name,
        "vendor": service.vendor,
        "slug": service.slug,
        "category": service.category,
        "identity": "",
        "managed_by_manifest": "on",
        "template_source": service.template_source,
        "region": "mars-1",
        "base_url": "",
        "application-TOTAL_FORMS": "0",
        "application-INITIAL_FORMS": "0",
        "plugins-TOTAL_FORMS": "0",
        "plugins-INITIAL_FORMS": "0",
    }
    response = operator.post(url, form)
    assert response.status_code == 200 and "Select a valid choice" in field_errors(response)
    response = operator.post(url, {**form, "region": "eu-west-1", "base_url": "ftp://x"})
    assert response.status_code == 200 and "http(s)://host" in field_errors(response)
    response = operator.post(url, {**form, "region": "eu-west-1"})
    assert response.status_code == 302, field_errors(response)
    assert ThirdPartyService.objects.get(pk=service.pk).settings == {"region": "eu-west-1"}


def test_api_refuses_bad_settings_and_half_a_key_pair(org: Organization, api: Any) -> None:
    install_from_template(org, "aws-ssm")
    admin = api(Role.ADMIN, username="boss")
    admin.user.is_staff = True
    admin.user.save()
    bad = admin.patch(
        "/api/orgs/acme/services/aws", {"settings": {"region": "mars-1"}}, format="json"
    )
    assert bad.status_code == 400 and "settings.region" in bad.json()["errors"]
    half = admin.patch(
        "/api/orgs/acme/services/aws/credentials",
        {"credentials": {"access_key_id": "AKIAABCDEFGHIJKLMNOP"}},
        format="json",
    )
    assert half.status_code == 400
    assert half.json()["errors"] == {"secret_access_key": "is required together with access_key_id"}
    assert not ServiceApplication.objects.exists()


def test_admin_binding_options_are_generated_from_the_manifest(
    operator: Client, org: Organization, project_type: Any
) -> None:
    from plugins_core.models import ProjectTypePlugin

    plugin = install_from_template(org, "github-actions").plugins[0]
    binding = ProjectTypePlugin.objects.create(
        project_type=project_type, plugin=plugin, tab="configuration"
    )
    url = reverse("admin:plugins_core_projecttypeplugin_change", args=[binding.pk])
    page = operator.get(url).content.decode()
    assert 'name="repository"' in page and 'name="options"' not in page
    form = {
        "project_type": project_type.pk,
        "plugin": plugin.pk,
        "tab": "configuration",
        "search_template": "",
        "repository": "not a repo",
    }
    response = operator.post(url, form)
    assert response.status_code == 200 and "must look like owner/repo" in field_errors(response)
    response = operator.post(url, {**form, "repository": "acme/billing"})
    assert response.status_code == 302, field_errors(response)
    assert ProjectTypePlugin.objects.get(pk=binding.pk).options == {"repository": "acme/billing"}
