"""Regex log filters through the REST API: a catastrophic or unsupported pattern is a 400
``regex_rejected`` problem, over the real local-logs plugin and a long range of lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from imbi.core.models import Organization, Project, ProjectType
from plugins_core.models import Plugin, ProjectTypePlugin, ThirdPartyService

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 1, tzinfo=UTC)
LINES = 5000


@pytest.fixture
def local_logs(org: Organization, project_type: ProjectType, tmp_path: Path) -> Path:
    with (tmp_path / "billing.jsonl").open("w") as out:
        for i in range(LINES):
            stamp = (NOW - timedelta(minutes=i)).isoformat()
            message = "a" * 200 if i % 2 else "a" * 190 + "X"
            out.write(json.dumps({"timestamp": stamp, "level": "info", "message": message}))
            out.write("\n")
    service = ThirdPartyService.objects.create(
        organization=org,
        vendor="local",
        name="Local",
        slug="local",
        settings={"directory": str(tmp_path)},
    )
    plugin = Plugin.objects.create(
        organization=org,
        service=service,
        slug="local-logs",
        plugin_type="logs",
        handler="local-logs",
    )
    ProjectTypePlugin.objects.create(
        project_type=project_type, plugin=plugin, tab="logs", search_template="${project}"
    )
    return tmp_path


def search(api: Any, project: Project, pattern: str) -> Any:
    query = urlencode(
        {
            "start": (NOW - timedelta(days=4)).isoformat(),
            "end": NOW.isoformat(),
            "limit": "1000",
            "filter": f"message:regex:{pattern}",
        }
    )
    return api().get(f"/api/orgs/acme/projects/{project.pk}/logs?{query}")


@pytest.mark.parametrize(
    ("pattern", "field_error"),
    [
        (r"(.*.*){3}X", "nested repetition"),
        (r"(a+)+X", "nested repetition"),
        (r"(?=a)X", "not supported by the linear-time regex engine"),  # lookahead: RE2 lacks it
        (r"(a)\1", "not supported by the linear-time regex engine"),  # backreference
        (r"(unclosed", "invalid regular expression"),
    ],
)
def test_refused_regex_filters_are_400_regex_rejected(
    local_logs: Path, project: Project, api: Any, pattern: str, field_error: str
) -> None:
    response = search(api, project, pattern)
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "regex_rejected"
    assert body["errors"] == {"filters[0].value": field_error}


def test_an_accepted_pattern_is_matched_in_linear_time_over_every_line(
    local_logs: Path, project: Project, api: Any
) -> None:
    # Backtracking re would take minutes on 5000 such lines; google-re2 is linear.
    response = search(api, project, r".*.*.*.*X$")
    assert response.status_code == 200, response.content
    entries = response.json()["entries"]
    assert len(entries) == 1000 and all(e["message"].endswith("X") for e in entries)


def test_every_plugin_that_filters_locally_refuses_it(
    project: Project, logs_plugin: Any, bind_type: Any, api: Any
) -> None:
    bind_type(logs_plugin)  # the example plugin generates its lines and filters them itself
    query = urlencode({"filter": "url:regex:(.*.*){3}X"})
    response = api().get(f"/api/orgs/acme/projects/{project.pk}/logs?{query}")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "regex_rejected"


class _NoPluginCall:
    def call(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the plugin was called with a filter the host refuses")


@pytest.mark.parametrize(
    ("pattern", "kind"),
    [
        (r"(?=a)X", "lookaround"),
        (r"(?<!a)X", "lookaround"),
        (r"(a)\1", "a backreference"),
        (r"(?P<x>a)(?P=x)", "a backreference"),
        (r"(a+)+X", "nested repetition"),
    ],
)
@pytest.mark.parametrize("route", ["logs", "logs/histogram"])
def test_the_host_refuses_before_any_plugin_is_called_naming_the_filter(
    project: Project,
    logs_plugin: Any,
    bind_type: Any,
    api: Any,
    monkeypatch: pytest.MonkeyPatch,
    pattern: str,
    kind: str,
    route: str,
) -> None:
    """Whatever the plugin does (or forgets), the host checks every regex filter first."""
    from plugins_core.serving import tabs

    monkeypatch.setattr(tabs, "default_runner", _NoPluginCall)
    bind_type(logs_plugin)
    query = urlencode({"filter": ["level:eq:error", f"url:regex:{pattern}"]}, doseq=True)
    response = api().get(f"/api/orgs/acme/projects/{project.pk}/{route}?{query}")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "regex_rejected"
    assert body["detail"].startswith(f"filters[1].value (filter 2, url:regex): {kind}")
    assert pattern not in body["detail"]  # never echoed
    assert list(body["errors"]) == ["filters[1].value"]
