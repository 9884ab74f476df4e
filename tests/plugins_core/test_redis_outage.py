"""A Redis outage during a configuration write: never a 500, never a half-done write.

Redis is stopped from inside the plugin call, i.e. after the request read the cache and while
the write is in flight: the suite's own Redis is frozen (SIGSTOP, resumed afterwards, so stale
entries survive the outage); for a hard kill each test starts a Redis of its own (the suite's
must stay up for the other tests) and points the cache at it. Then: the write and its audit
event both exist and the answer says the cache invalidation was ``deferred`` (done through the
database); or, when the write itself fails, neither exists and the answer is a 503
problem+json.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.test import override_settings

from imbi.core.models import AuditEvent, Organization, Project, Role
from imbi.testing import pytest_plugin
from imbi.testing.services import Services, start_redis
from plugins_core.models import Plugin, PluginStorage
from plugins_core.sdk import UpstreamUnavailable
from plugins_core.serving import runner as runner_module
from plugins_core.serving.runner import InProcessRunner

PROBLEM = "application/problem+json"


class OwnRedis:
    def __init__(self, root: Path) -> None:
        self.services = Services(root=root)
        start_redis(self.services)
        self.url = self.services.redis_url
        self.pid = self.services.redis_pid
        self.client = redis.Redis.from_url(self.url)

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:  # already down
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)
        raise AssertionError("redis did not die")

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGCONT)
        self.services.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    caches = {
        "default": {
            "BACKEND": "imbi.core.cache.ResilientRedisCache",
            "LOCATION": server.url,
            "KEY_PREFIX": "imbi",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    try:
        with override_settings(CACHES=caches):
            yield server
    finally:
        server.stop()


class HarnessRedis:
    """The suite's own Redis (the test settings' cache): paused and resumed, never killed."""

    def __init__(self) -> None:
        services = pytest_plugin.current_services()
        assert services is not None, "the harness did not start Redis"
        assert settings.CACHES["default"]["LOCATION"] == services.redis_url
        self.pid = services.redis_pid
        self.client = redis.Redis.from_url(services.redis_url)

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)


@pytest.fixture
def harness_redis() -> Iterator[HarnessRedis]:
    server = HarnessRedis()
    try:
        yield server
    finally:
        server.resume()  # whatever happened, the rest of the suite needs it


class OutageDuringWrite(InProcessRunner):
    """Runs the plugin, then takes Redis down before the host invalidates its cache."""

    def __init__(self, outage: Any, *, then_fail: bool = False) -> None:
        self.outage = outage
        self.then_fail = then_fail

    def call(self, resolved: Any, method: str, *args: Any) -> Any:
        result = super().call(resolved, method, *args)
        if method in {"set_value", "delete_key"}:
            self.outage()
            if self.then_fail:  # the plugin wrote to its storage, then its backend failed
                raise UpstreamUnavailable("the backend went away mid-write")
        return result


@pytest.fixture
def editor_api(api: Any, project: Project, config_plugin: Plugin, bind_type: Any) -> Any:
    bind_type(config_plugin, default=True)  # example-config: host storage, cacheable
    return api(Role.EDITOR)


def url(project: Project, suffix: str) -> str:
    return f"/api/orgs/{project.organization.slug}/projects/{project.pk}/configuration{suffix}"


def put(client: Any, project: Project, key: str, value: str) -> Any:
    return client.put(
        url(project, f"/keys/{key}"),
        {"data_type": "string", "value": value, "secret": False},
        format="json",
    )


def values(client: Any, project: Project) -> dict[str, Any]:
    response = client.get(url(project, "/values"))
    assert response.status_code == 200, response.content
    return {v["key"]: v["value"] for v in response.json()["values"]}


def audits(key: str, action: str = AuditEvent.Action.CONFIG_SET) -> int:
    return AuditEvent.objects.filter(action=action, key=key).count()


def stored(plugin: Plugin) -> dict[str, str]:
    return {row.key: row.value for row in PluginStorage.objects.filter(plugin=plugin)}


def test_redis_killed_mid_write_the_write_and_its_audit_both_exist(
    own_redis: OwnRedis,
    editor_api: Any,
    project: Project,
    config_plugin: Plugin,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert put(editor_api, project, "A", "1").json()["cache_invalidation"] == "immediate"
    assert values(editor_api, project) == {"A": "1"}  # now cached in Redis
    before = stored(config_plugin)
    monkeypatch.setattr(runner_module, "_default", OutageDuringWrite(own_redis.kill))

    response = put(editor_api, project, "A", "2")

    assert response.status_code == 200, response.content
    assert response.json()["cache_invalidation"] == "deferred"
    assert response["Imbi-Cache-Invalidation"] == "deferred"
    assert audits("A") == 2
    assert stored(config_plugin) != before  # the value changed ...
    assert values(editor_api, project) == {"A": "2"}  # ... and reads work with Redis down

    # A delete in the same outage: 204, the key is gone and the delete is audited.
    deleted = editor_api.delete(url(project, "/keys/A"))
    assert deleted.status_code == 204
    assert deleted["Imbi-Cache-Invalidation"] == "deferred"
    assert audits("A", AuditEvent.Action.CONFIG_DELETE) == 1
    assert values(editor_api, project) == {}


def test_the_suites_redis_paused_mid_write_stale_cache_is_not_served_once_it_is_back(
    harness_redis: HarnessRedis,
    editor_api: Any,
    project: Project,
    config_plugin: Plugin,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ours = f"*imbi:tab:{config_plugin.pk}:{project.pk}:*"
    put(editor_api, project, "A", "1")
    assert values(editor_api, project) == {"A": "1"}
    cached_before = set(harness_redis.client.keys(ours))
    assert cached_before, "the listing was not cached: this test would prove nothing"
    version = Organization.objects.get(pk=project.organization_id).config_version
    monkeypatch.setattr(runner_module, "_default", OutageDuringWrite(harness_redis.pause))

    response = put(editor_api, project, "A", "2")  # the INCR times out: Redis is frozen

    assert response.status_code == 200, response.content
    assert response.json()["cache_invalidation"] == "deferred"
    assert audits("A") == 2
    assert Organization.objects.get(pk=project.organization_id).config_version > version
    harness_redis.resume()
    # The stale entry is still in Redis, yet the next read shows the new value.
    assert cached_before <= set(harness_redis.client.keys(ours))
    monkeypatch.setattr(runner_module, "_default", InProcessRunner())
    assert values(editor_api, project) == {"A": "2"}


def test_a_write_that_fails_during_the_outage_leaves_nothing_behind(
    own_redis: OwnRedis,
    editor_api: Any,
    project: Project,
    config_plugin: Plugin,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    put(editor_api, project, "A", "1")
    before = stored(config_plugin)
    monkeypatch.setattr(
        runner_module, "_default", OutageDuringWrite(own_redis.kill, then_fail=True)
    )

    response = put(editor_api, project, "A", "2")

    assert response.status_code == 503
    assert response["Content-Type"] == PROBLEM
    assert response.json()["code"] == "upstream_unavailable"
    assert stored(config_plugin) == before  # the plugin's storage write was rolled back
    assert audits("A") == 1  # only the first write
    assert values(editor_api, project) == {"A": "1"}
