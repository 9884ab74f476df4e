"""Fixtures for the isolated runtime: hostile plugins installed and bound, process checks."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from imbi.core.models import Organization, Project, ProjectType, Role
from plugins_core.isolation import host
from plugins_core.isolation.host import IsolatedRunner
from plugins_core.models import Plugin, ProjectTypePlugin, ThirdPartyService
from plugins_core.serving.resolution import resolve


def descendants(root: int) -> set[int]:
    """Live (non-zombie) processes below ``root``."""
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            continue
        parents[int(name)] = int(fields[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def wait_no_descendants(timeout: float = 2.0) -> set[int]:
    deadline = time.monotonic() + timeout
    left = descendants(os.getpid())
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = descendants(os.getpid())
    return left


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture(autouse=True)
def fresh_runtime(settings: Any) -> Iterator[None]:
    """Every test starts with no warm runner and closed breakers, and leaves none behind."""
    settings.IMBI_PLUGIN_BREAKER_REDIS_URL = ""
    host.reset_runtime()
    yield
    host.reset_runtime()
    left = wait_no_descendants()
    assert not left, f"runner processes left behind: {sorted(left)}"


@pytest.fixture
def hostile(org: Organization, service: ThirdPartyService, project_type: ProjectType) -> Any:
    """Install hostile entry point ``name`` in ``org`` and bind it to the configuration tab."""

    def make(name: str, **options: Any) -> Plugin:
        plugin = Plugin.objects.create(
            organization=org,
            service=service,
            slug=name,
            plugin_type="configuration",
            handler=name,
            options=options,
        )
        ProjectTypePlugin.objects.create(
            project_type=project_type, plugin=plugin, tab="configuration", default=True
        )
        return plugin

    return make


@pytest.fixture
def viewer(api: Any) -> Any:
    return api(Role.VIEWER)


def tab_url(project: Project) -> str:
    return f"/api/orgs/{project.organization.slug}/projects/{project.pk}/configuration"


@dataclass
class Poller:
    """Calls a healthy isolated plugin in a loop on another thread while a test runs."""

    resolved: Any
    results: list[tuple[str, float]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        runner = IsolatedRunner()
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                keys = runner.call(self.resolved, "list_keys")
                outcome = "ok" if [k.key for k in keys] == ["HEALTHY"] else "wrong"
            except Exception as exc:
                outcome = type(exc).__name__
            self.results.append((outcome, time.monotonic() - started))
            time.sleep(0.05)


@pytest.fixture
def healthy_tab(other_org: Organization) -> Iterator[Poller]:
    """A healthy isolated plugin in another organization, polled throughout the test."""
    svc = ThirdPartyService.objects.create(
        organization=other_org, vendor="example", name="Example", slug="example"
    )
    ptype = ProjectType.objects.create(organization=other_org, slug="api", name="API")
    project = Project.objects.create(
        organization=other_org, project_type=ptype, slug="web", name="Web"
    )
    plugin = Plugin.objects.create(
        organization=other_org,
        service=svc,
        slug="healthy",
        plugin_type="configuration",
        handler="hostile-healthy",
    )
    ProjectTypePlugin.objects.create(
        project_type=ptype, plugin=plugin, tab="configuration", default=True
    )
    poller = Poller(resolve(project, "configuration", timeout=3.0))
    thread = threading.Thread(target=poller.run, daemon=True)
    thread.start()
    while not poller.results:  # warm: the first answer came back
        time.sleep(0.02)
    yield poller
    poller.stop.set()
    thread.join(timeout=10)
    outcomes = {outcome for outcome, _ in poller.results}
    assert outcomes == {"ok"}, f"the healthy tab failed while a hostile plugin ran: {outcomes}"
