"""``/metrics``: closed without a token setting, 401/403 without the right bearer token, and
with it a tab call counted with its plugin, organization and outcome code (docs/operations.md,
*Metrics*)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from imbi.core import metrics
from imbi.core.models import Project
from tests.plugins_core.conftest import API_TOKEN

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-0123456789abcdef"


def scrape(token: str | None = TOKEN) -> Any:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return Client().get("/metrics", secure=True, headers=headers)


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def calls(text: str, **labels: str) -> float:
    return sum(
        value
        for key, value in samples(text, "imbi_plugin_calls_total").items()
        if labels.items() <= dict(key).items()
    )


def url(project: Project, suffix: str) -> str:
    return f"/api/orgs/{project.organization.slug}/projects/{project.pk}/{suffix}"


@override_settings(IMBI_METRICS_TOKEN="")
def test_without_the_setting_metrics_do_not_exist() -> None:
    assert scrape().status_code == 404
    assert scrape(None).status_code == 404


@override_settings(IMBI_METRICS_TOKEN=TOKEN)
def test_missing_or_wrong_token_says_nothing() -> None:
    metrics.PLUGIN_CALLS.labels("leaky", "org", "list_keys", "ok").inc()
    missing = scrape(None)
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    for response in (
        missing,
        scrape("wrong-token"),
        scrape(TOKEN[:-1]),
        Client().get("/metrics", secure=True, headers={"Authorization": f"Basic {TOKEN}"}),
    ):
        assert response.status_code in (401, 403)
        body = response.content.decode()
        assert "imbi_" not in body and "leaky" not in body and TOKEN not in body
    assert scrape("wrong-token").status_code == 403


@override_settings(IMBI_METRICS_TOKEN=TOKEN)
def test_a_tab_call_is_counted_with_plugin_organization_and_code(
    project: Project, install: Any, bind_type: Any, api: Any
) -> None:
    bind_type(install("example-config", "flaky", options={"mode": "flaky"}))
    bind_type(install("example-config", "good"), default=True)
    org = project.organization.slug
    before = scrape().content.decode()
    client = api()
    assert client.get(url(project, "configuration")).status_code == 200
    assert client.get(url(project, "configuration?source=flaky")).status_code == 503

    response = scrape()
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert "no-cache" in response.get("Cache-Control", "") or "no-store" in response.get(
        "Cache-Control", ""
    )
    after = response.content.decode()
    ok = {"plugin": "good", "organization": org, "method": "list_keys", "code": "ok"}
    failed = {"plugin": "flaky", "organization": org, "code": "upstream_unavailable"}
    assert calls(after, **ok) == calls(before, **ok) + 1
    assert calls(after, **failed) == calls(before, **failed) + 1
    assert calls(after, plugin="good", code="upstream_unavailable") == calls(
        before, plugin="good", code="upstream_unavailable"
    )

    counts = samples(after, "imbi_plugin_call_duration_seconds_count")
    assert counts[(("organization", org), ("plugin", "good"))] >= 1
    assert "imbi_plugin_registry_generation" in after
    assert "imbi_plugin_runner_pool_idle" in after
    # no credential, no option value, no token in what a scraper sees
    assert API_TOKEN not in after and TOKEN not in after


def test_outcome_codes_are_stable_labels() -> None:
    class Coded(Exception):
        code = "plugin_busy"

    class Weird(Exception):
        code = "not a code; $(rm)"

    assert metrics.code_of(None) == "ok"
    assert metrics.code_of(Coded()) == "plugin_busy"
    assert metrics.code_of(Weird()) == "error"
    assert metrics.code_of(ValueError("secret-in-message")) == "error"


def test_celery_outcomes_are_counted() -> None:
    from imbi.celery import app

    @app.task(name="tests.metrics.ok")
    def ok() -> int:
        return 1

    @app.task(name="tests.metrics.boom")
    def boom() -> None:
        raise RuntimeError("boom")

    def count(task: str, outcome: str) -> float:
        return metrics.CELERY_TASKS.labels(task, outcome)._value.get()

    ok_before, fail_before = (
        count("tests.metrics.ok", "success"),
        count("tests.metrics.boom", "failure"),
    )
    ok.apply()
    boom.apply(throw=False)
    assert count("tests.metrics.ok", "success") == ok_before + 1
    assert count("tests.metrics.boom", "failure") == fail_before + 1
