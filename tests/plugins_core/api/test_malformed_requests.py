"""Malformed requests are 4xx problem+json on every write route, never a 500 (issue 22):
too many form fields or files (Django's TooManyFieldsSent/TooManyFilesSent), and ids past the
64-bit range in paths and query strings (docs/security.md: they answer 404 / 400)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from imbi.core.models import Project, Role

pytestmark = pytest.mark.django_db
TOO_BIG = str(2**63)


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


@pytest.fixture
def writer(project: Project, api: Any) -> Any:
    client = api(Role.ADMIN)
    project.owners.add(client.user)
    return client


def write_routes(project: Project) -> list[str]:
    base = f"/api/orgs/{project.organization.slug}"
    return [
        f"{base}/projects/{project.pk}/bindings",
        f"{base}/project-types/{project.project_type.slug}/bindings",
        f"{base}/services",
        f"{base}/projects/{project.pk}/configuration/keys/K",
    ]


@pytest.mark.parametrize("method", ["post", "put", "patch"])
def test_too_many_form_fields_is_400_too_many_fields(
    project: Project, writer: Any, method: str, settings: Any
) -> None:
    fields = {f"f{i}": "x" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}
    for route in write_routes(project):
        response = getattr(writer, method)(route, fields, format="multipart")
        if response.status_code == 405:
            continue
        body = problem(response, 400, "too_many_fields")
        assert body["limit"] == settings.DATA_UPLOAD_MAX_NUMBER_FIELDS


def test_too_many_files_is_400_too_many_files(project: Project, writer: Any, settings: Any) -> None:
    files = {
        f"f{i}": SimpleUploadedFile(f"f{i}.txt", b"x")
        for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FILES + 1)
    }
    for route in write_routes(project)[:3]:
        body = problem(writer.post(route, files, format="multipart"), 400, "too_many_files")
        assert body["limit"] == settings.DATA_UPLOAD_MAX_NUMBER_FILES


def test_ids_past_64_bits_are_404_in_paths(project: Project, writer: Any) -> None:
    org = project.organization.slug
    for path in (
        f"/api/orgs/{org}/projects/{TOO_BIG}",
        f"/api/orgs/{org}/projects/{TOO_BIG}/tabs",
        f"/api/orgs/{org}/projects/{TOO_BIG}/configuration/values",
        f"/api/orgs/{org}/projects/{project.pk}/bindings/{TOO_BIG}",
        f"/api/orgs/{org}/project-types/{project.project_type.slug}/bindings/{TOO_BIG}",
        f"/api/orgs/{org}/projects/0/tabs",
    ):
        problem(writer.get(path), 404, "not_found")


def test_ids_past_64_bits_are_404_on_the_pages(project: Project, writer: Any) -> None:
    client = Client()
    client.force_login(writer.user)
    org = project.organization.slug
    for path in (
        f"/projects/{org}/{TOO_BIG}/",
        f"/projects/{org}/{project.pk}/bindings/{TOO_BIG}/",
    ):
        assert client.get(path).status_code == 404


def test_ids_past_64_bits_in_a_query_are_field_errors(project: Project, api: Any) -> None:
    operator = api(Role.ADMIN, username="ops")
    operator.user.is_staff = True
    operator.user.save(update_fields=["is_staff"])
    org = project.organization.slug
    for query in (f"project={TOO_BIG}", f"before={TOO_BIG}"):
        body = problem(operator.get(f"/api/orgs/{org}/audit-events?{query}"), 400, "invalid_input")
        assert query.split("=")[0] in body["errors"]
