"""Error pages in the product's look, with a way home and the CSP header; a branded admin
(issue 22).

404, 403 (an operator on a superuser-only page), CSRF failure, 413 and 500 are served from
``templates/errors/base.html``. Under ``make run`` (DEBUG) the 404/500 pages come from
``SafeDebugPagesMiddleware`` and the 413 page in production from
``RequestSizeLimitMiddleware``: both sit below the CSP middleware now, so they carry the
policy too.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import include, path

from imbi.core.models import Membership, Organization, Role

pytestmark = pytest.mark.django_db


def _boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("kaboom-detail-7f3e")


urlpatterns = [path("boom/", _boom), path("", include("imbi.urls"))]
handler404 = "imbi.api.problems.handler404"
handler500 = "imbi.api.problems.handler500"


def assert_styled(response: Any, status: int, *texts: str) -> str:
    assert response.status_code == status
    assert "default-src 'self'" in response["Content-Security-Policy"], status
    page = response.content.decode()
    assert "/static/plugins_core/project.css" in page  # the product's look
    assert 'class="brand" href="/"' in page and '<a href="/">Home</a>' in page  # a way home
    for text in texts:
        assert text in page, text
    return page


@pytest.mark.parametrize("debug", [False, True])
def test_404_and_500_are_styled_and_carry_the_policy(settings: Any, debug: bool) -> None:
    settings.DEBUG = debug
    settings.ROOT_URLCONF = __name__
    client = Client(raise_request_exception=False)
    assert_styled(client.get("/no-such-page/"), 404, "Page not found (404)")
    page = assert_styled(client.get("/boom/"), 500, "Server error (500)")
    assert "kaboom-detail-7f3e" not in page and "Traceback" not in page


@pytest.mark.parametrize("debug", [False, True])
def test_413_is_styled_and_carries_the_policy(settings: Any, debug: bool) -> None:
    settings.DEBUG = debug
    response = Client().generic(
        "POST",
        "/accounts/login/",
        b"x",
        content_type="application/x-www-form-urlencoded",
        CONTENT_LENGTH=str(settings.IMBI_MAX_REQUEST_BYTES + 1),
    )
    assert_styled(response, 413, "Request too large (413)")


def test_csrf_failure_is_styled() -> None:
    response = Client(enforce_csrf_checks=True).post(
        "/accounts/login/", {"username": "x", "password": "y"}
    )
    assert_styled(response, 403, "The form could not be checked", "reload the page")


@pytest.fixture
def operator(django_user_model: Any, org: Organization) -> Client:
    user = django_user_model.objects.create_user("op", password="pw", is_staff=True)
    Membership.objects.create(user=user, organization=org, role=Role.ADMIN)
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("url", ["/admin/auth/user/", "/admin/plugins_core/installeddistribution/"])
def test_operator_on_a_superuser_only_page_gets_a_styled_403(operator: Client, url: str) -> None:
    assert_styled(operator.get(url), 403, "Not allowed (403)", "superusers only")


def test_admin_is_branded_with_correct_plurals(django_user_model: Any) -> None:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", "r@e.com", "pw"))
    page = client.get("/admin/").content.decode()
    assert "<title>" in page and "Imbi administration</title>" in page
    assert 'id="site-name"><a href="/admin/">Imbi administration</a>' in page
    assert "Django" not in page
    assert "Plugin policies" in page and "Plugin policys" not in page
    assert "Project-type bindings" in page and "Third-party services" in page
    login = Client().get("/admin/login/").content.decode()
    assert "Imbi administration" in login and "Django administration" not in login
