"""Content-Security-Policy on every response (django-csp); the browser tests prove nothing
on the admin, the wizard, the project page and the API docs is blocked by it."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def directives(header: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in header.split(";") if part.strip())


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/accounts/login/", 200),
        ("/admin/login/", 200),
        ("/api/docs/", 200),
        ("/api/whoami", 401),
        ("/no-such-page/", 404),
        ("/healthz", 200),
    ],
)
def test_every_response_carries_the_policy(path: str, status: int) -> None:
    response = Client().get(path)
    assert response.status_code == status
    assert directives(response["Content-Security-Policy"]) == POLICY


def test_swagger_ui_comes_from_the_installed_sidecar_without_inline_script() -> None:
    page = Client().get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower() and "<script>" not in page and "<style>" not in page
    script = Client().get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")


def test_only_redoc_relaxes_styles() -> None:
    response = Client().get("/api/redoc/")
    assert response.status_code == 200
    policy = directives(response["Content-Security-Policy"])
    assert policy == {
        **POLICY,
        "style-src": "'self' 'unsafe-inline'",
        "worker-src": "'self' blob:",
    }
    assert "fonts.googleapis.com" not in response.content.decode()
