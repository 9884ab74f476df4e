"""The cacheable hint: cached listings and masked values, one-INCR invalidation, no secrets."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from django.conf import settings
from imbi_plugin_sdk import ConfigWrite, DataType

from imbi.core.access import load_project
from imbi.core.models import Project, Role
from plugins_core.serving import tabs
from plugins_core.serving.runner import InProcessRunner

SECRET = "cache-must-never-hold-this-7f3a"


class CountingRunner(InProcessRunner):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def call(self, resolved: Any, method: str, *args: Any) -> Any:
        self.calls.append(method)
        return super().call(resolved, method, *args)


@pytest.fixture
def editor(project: Project, make_member: Any) -> Any:
    return make_member(project.organization, Role.EDITOR, secrets=True)


def fresh(project: Project, user: Any) -> tuple[Project, Any]:
    return load_project(user, project.organization.slug, project.pk)


def test_cacheable_results_are_reused_and_writes_invalidate(
    project: Project, config_plugin: Any, bind_type: Any, editor: Any
) -> None:
    bind_type(config_plugin, default=True)  # example-config declares cacheable, ttl 30
    runner = CountingRunner()
    p, grant = fresh(project, editor)
    tabs.set_value(
        p,
        grant,
        editor,
        None,
        "A",
        ConfigWrite(data_type=DataType.STRING, value="1"),
        runner=runner,
    )
    for _ in range(3):
        p, grant = fresh(project, editor)
        _, values = tabs.get_values(p, grant, editor, None, None, runner=runner)
        assert [(v.key, v.value) for v in values] == [("A", "1")]
    assert runner.calls.count("get_values") == 1
    p, grant = fresh(project, editor)
    tabs.set_value(
        p,
        grant,
        editor,
        None,
        "A",
        ConfigWrite(data_type=DataType.STRING, value="2"),
        runner=runner,
    )
    p, grant = fresh(project, editor)
    _, values = tabs.get_values(p, grant, editor, None, None, runner=runner)
    assert [(v.key, v.value) for v in values] == [("A", "2")]
    assert runner.calls.count("get_values") == 2
    p, grant = fresh(project, editor)
    tabs.delete_key(p, grant, editor, None, "A", runner=runner)
    p, grant = fresh(project, editor)
    assert tabs.list_keys(p, grant, None, runner=runner)[1] == []


def test_revealed_reads_always_call_the_plugin_and_no_secret_is_cached(
    project: Project, config_plugin: Any, bind_type: Any, editor: Any
) -> None:
    bind_type(config_plugin, default=True)
    runner = CountingRunner()
    p, grant = fresh(project, editor)
    tabs.set_value(
        p,
        grant,
        editor,
        None,
        "PW",
        ConfigWrite(data_type=DataType.SECRET, value=SECRET, secret=True),
        runner=runner,
    )
    for _ in range(2):
        p, grant = fresh(project, editor)
        _, masked = tabs.get_values(p, grant, editor, None, None, runner=runner)
        assert masked[0].value is None
        p, grant = fresh(project, editor)
        _, shown = tabs.get_values(p, grant, editor, None, None, reveal=True, runner=runner)
        assert shown[0].value == SECRET
    assert runner.calls.count("get_values") == 3  # one masked fill, two reveals
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter("*"):
        raw = client.get(key) if client.type(key) == b"string" else b""
        assert SECRET.encode() not in (raw or b"")


def test_non_cacheable_plugins_are_called_every_time(
    project: Project, install: Any, bind_type: Any, editor: Any
) -> None:
    bind_type(install("example-static", options={"values": {"K": "v"}}), default=True)
    runner = CountingRunner()
    for _ in range(3):
        p, grant = fresh(project, editor)
        tabs.get_values(p, grant, editor, None, None, runner=runner)
    assert runner.calls.count("get_values") == 3
