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


@override_settings(IMBI_METRICS_TOKEN=TOKEN, IMBI_PLUGIN_BREAKER_REDIS_URL="")
def test_isolated_calls_count_once_with_runner_starts_and_the_idle_pool(
    project: Project, install: Any, bind_type: Any, api: Any
) -> None:
    from plugins_core.isolation import host

    host.reset_runtime()
    try:
        plugin = install("example-config", "iso", execution_mode="isolated")
        bind_type(plugin, default=True)
        org = project.organization.slug
        before = scrape().content.decode()
        client = api()
        assert client.get(url(project, "configuration")).status_code == 200
        assert client.get(url(project, "configuration/values")).status_code == 200
        after = scrape().content.decode()
    finally:
        host.reset_runtime()
    ok = {"plugin": "iso", "organization": org, "code": "ok"}
    # counted once per call at the runner seam, not once per layer
    assert calls(after, **ok) == calls(before, **ok) + 2
    assert calls(after, method="get_values", **ok) == calls(before, method="get_values", **ok) + 1
    starts = samples(after, "imbi_plugin_runner_starts_total")
    started_before = samples(before, "imbi_plugin_runner_starts_total")
    # the second call reused the warm runner the first one started
    assert starts[(("plugin", "iso"),)] == started_before.get((("plugin", "iso"),), 0) + 1
    assert samples(after, "imbi_plugin_runner_pool_idle")[()] == 1


@override_settings(IMBI_PLUGIN_BREAKER_REDIS_URL="")
def test_egress_refusals_are_counted_per_plugin() -> None:
    from plugins_core.isolation import host
    from tests.plugins_core.isolation.test_egress import probe

    def refused() -> float:
        return metrics.EGRESS_REFUSALS.labels("hostile-egress")._value.get()

    before = refused()
    host.reset_runtime()
    try:  # a loopback port nobody declared: the broker refuses it before connecting
        report = probe({"UNDECLARED": "tcp 127.0.0.1 9"}, ("127.0.0.1:10",))
    finally:
        host.reset_runtime()
    assert report == ["UNDECLARED_REFUSED_PermissionError_EACCES"]
    assert refused() == before + 1


@override_settings(
    IMBI_METRICS_TOKEN=TOKEN,
    IMBI_PLUGIN_BREAKER_REDIS_URL="",
    IMBI_PLUGIN_CONCURRENCY_PER_PLUGIN=1,
)
def test_a_busy_refusal_is_counted_and_its_call_carries_the_code(
    project: Project, install: Any, bind_type: Any, api: Any
) -> None:
    from plugins_core.isolation import concurrency, host

    plugin = install("example-config", "crowded", execution_mode="isolated")
    bind_type(plugin, default=True)
    org = project.organization.slug
    before = scrape().content.decode()
    with concurrency.slots(  # another call holds the plugin's only slot
        scope=host._deployment(),
        plugin=host.plugin_breaker_key(plugin.pk),
        organization=org,
        slug="crowded",
        per_plugin=1,
        per_organization=0,
        timeout=1.0,
    ):
        response = api().get(url(project, "configuration"))
    assert response.status_code == 503 and response.json()["code"] == "plugin_busy"
    after = scrape().content.decode()
    busy = (("organization", org), ("plugin", "crowded"))
    assert (
        samples(after, "imbi_plugin_busy_refusals_total")[busy]
        == samples(before, "imbi_plugin_busy_refusals_total").get(busy, 0) + 1
    )
    assert calls(after, plugin="crowded", code="plugin_busy") == 1 + calls(
        before, plugin="crowded", code="plugin_busy"
    )
