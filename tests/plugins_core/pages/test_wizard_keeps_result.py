"""A failed connection test survives going back through the wizard unless an input changed
(issue 22: going back through Credentials turned it into "not tested", and the "Install
anyway" choice disappeared). Every step is submitted as served (tests/served_forms.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from imbi.core.models import Organization
from tests.plugins_core.pages.test_wizard import start, step_url
from tests.served_forms import submit_as_served

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(django_user_model: Any) -> Client:
    user = django_user_model.objects.create_superuser("operator", "op@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def _step(
    client: Client, pid: str, step: str, changes: dict[str, Any], then: str, **kw: Any
) -> None:
    response = submit_as_served(client, step_url(pid, step), changes, **kw)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"].endswith(f"/{then}/"), response["Location"]


def _result(client: Client, pid: str) -> str:
    page = client.get(step_url(pid, "test")).content.decode()
    if 'class="connection problem"' in page:
        return "problem"
    if 'class="connection ok"' in page:
        return "ok"
    assert 'class="connection untested"' in page
    return "untested"


def test_a_failed_test_is_kept_when_going_back_changes_nothing(
    operator: Client, org: Organization
) -> None:
    pid = start(operator, org)
    _step(operator, pid, "service", {"mode": "template"}, "credentials", has="mode")
    _step(operator, pid, "credentials", {"api_token": "bad"}, "options", has="api_token")
    _step(operator, pid, "options", {}, "test", has="prefix")
    _step(operator, pid, "test", {}, "test", has="action", submit="action=test")
    assert _result(operator, pid) == "problem"

    # Back through every earlier step, changing nothing: the result holds.
    _step(operator, pid, "service", {}, "credentials", has="mode")
    _step(operator, pid, "credentials", {}, "options", has="api_token")
    _step(operator, pid, "options", {}, "test", has="prefix")
    assert _result(operator, pid) == "problem"
    _step(operator, pid, "test", {}, "bind", has="action", submit="action=Next")
    _step(operator, pid, "bind", {}, "finish", has="search_template")
    finish = operator.get(step_url(pid, "finish")).content.decode()
    assert 'name="confirm_failed"' in finish and "Install anyway" in finish

    # A changed input does make it stale.
    _step(operator, pid, "credentials", {"api_token": "good"}, "options", has="api_token")
    assert _result(operator, pid) == "untested"
    _step(operator, pid, "test", {}, "test", has="action", submit="action=test")
    assert _result(operator, pid) == "ok"
    _step(operator, pid, "options", {"prefix": "other/"}, "test", has="prefix")
    assert _result(operator, pid) == "untested"
