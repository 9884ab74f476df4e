"""No 500s on bad input (imbi.core.limits): oversized bodies are 413, ids out of range are
404, and DEBUG (``make run``) never shows Django's technical pages with routes or settings."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, override_settings

from imbi.core.models import AuditEvent, Organization, Project, Role

pytestmark = pytest.mark.django_db

HUGE = "9223372036854775808"  # 2**63: one past the largest bigint


@pytest.fixture
def owner_client(make_member: Any, org: Organization, project: Project) -> Client:
    user = make_member(org, Role.OWNER, username="owner")
    project.owners.add(user)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def test_a_10_mb_configuration_put_is_413_problem_json(
    project: Project, config_plugin: Any, bind_type: Any, api: Any
) -> None:
    bind_type(config_plugin, default=True)
    client = api(Role.ADMIN, secrets=True)
    body = b'{"data_type":"string","value":"' + b"x" * (10 * 1024 * 1024) + b'"}'
    response = client.put(
        f"/api/orgs/acme/projects/{project.pk}/configuration/keys/BIG",
        data=body,
        content_type="application/json",
    )
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert (problem["code"], problem["limit_bytes"]) == ("request_too_large", 1024 * 1024)
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.CONFIG_SET).exists()
    # just under the limit is served normally
    value = "y" * 1000
    ok = client.put(
        f"/api/orgs/acme/projects/{project.pk}/configuration/keys/SMALL",
        {"data_type": "string", "value": value},
        format="json",
    )
    assert ok.status_code == 200, ok.content


def test_an_oversized_form_post_is_a_413_page(owner_client: Client, project: Project) -> None:
    response = owner_client.post(
        f"/projects/acme/{project.pk}/bindings/add/",
        data=b"x" * (2 * 1024 * 1024),
        content_type="application/octet-stream",
    )
    assert response.status_code == 413
    assert "Request too large" in response.content.decode()


def test_ids_out_of_range_are_404_on_the_api_and_the_project_page(
    owner_client: Client, project: Project, api: Any
) -> None:
    for path in ("tabs", "configuration", "logs", "bindings", f"bindings/{HUGE}"):
        response = api(Role.ADMIN, username=f"a-{path.replace('/', '-')[:20]}").get(
            f"/api/orgs/acme/projects/{HUGE}/{path}"
        )
        assert response.status_code == 404, (path, response.content)
        assert response.json()["code"] == "not_found"
    response = api(Role.ADMIN, username="b").get(
        f"/api/orgs/acme/projects/{project.pk}/bindings/{HUGE}"
    )
    assert response.status_code == 404
    for url in (
        f"/projects/acme/{HUGE}/",
        f"/projects/acme/{HUGE}/preview/",
        f"/projects/acme/{project.pk}/bindings/{HUGE}/",
    ):
        assert owner_client.get(url).status_code == 404, url
    delete = f"/projects/acme/{project.pk}/bindings/{HUGE}/delete/"
    assert owner_client.post(delete).status_code == 404


def test_admin_ids_out_of_range_are_404(django_user_model: Any) -> None:
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client = Client(raise_request_exception=False)
    client.force_login(root)
    state = client.post(f"/admin/plugins_core/plugin/{HUGE}/state/", {"enabled": "1"})
    assert state.status_code == 404


@override_settings(DEBUG=True)
def test_debug_404_pages_list_no_routes(owner_client: Client, project: Project) -> None:
    for url in ("/no-such-page/", f"/projects/acme/{HUGE}/", "/projects/acme/999999/"):
        response = owner_client.get(url)
        assert response.status_code == 404, url
        page = response.content.decode()
        assert "URLconf" not in page and "admin/" not in page and "api/" not in page, url
        assert "Page not found" in page
    api_miss = owner_client.get("/api/nothing-here")
    assert api_miss.status_code == 404 and api_miss.json()["code"] == "not_found"


@override_settings(DEBUG=True)
def test_debug_500_pages_show_no_settings_or_traceback(
    owner_client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from plugins_core.pages import views

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("kaboom-internal-detail")

    monkeypatch.setattr(views.ProjectListView, "get", explode)
    response = owner_client.get("/projects/")
    assert response.status_code == 500
    page = response.content.decode()
    assert "Server error" in page
    for leak in ("SECRET_KEY", "Traceback", "kaboom-internal-detail", "DATABASES", "settings"):
        assert leak not in page, leak
    assert "kaboom-internal-detail" in caplog.text  # the traceback goes to the server log
