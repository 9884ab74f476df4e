"""Imports off the request path: a process's first snapshot serves at once while untrusted
plugins are imported in their sandboxed runners in the background.

The test venv holds tests/hostile_plugin (untrusted), whose 'hostile-import-hang' entry point
sleeps 30 s at import. Each test starts from a process that has no snapshot yet, and holds
the background inspection at a gate, so "still loading" is a state the test controls, not a
race against a clock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from imbi.core.models import Project
from plugins_core import registry
from plugins_core.models import Plugin
from plugins_core.registry import Status, live, loading

STATE = (
    "_current",
    "_examined",
    "_managed",
    "_pending",
    "_epoch",
    "_inspector_pid",
    "_inspection_started",
)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """A process without a snapshot; sandboxed inspections wait until the gate opens.

    Afterwards the process's own snapshot comes back (a later test sees what it saw)."""
    saved = {name: getattr(live, name) for name in STATE}
    opened = threading.Event()
    inspect = loading._examine_isolated

    def gated(candidates: list[registry.Candidate]) -> list[registry.Entry]:
        opened.wait(timeout=120)  # a bound so a broken test cannot hang the suite
        return inspect(candidates)

    monkeypatch.setattr(loading, "_examine_isolated", gated)
    with live._lock:
        live._current = None
        live._managed = ()
        live._pending = {}
    yield opened
    opened.set()
    registry.wait_loaded(timeout=120)  # the inspection's runners are gone before the next test
    with live._lock:
        for name, value in saved.items():
            setattr(live, name, value)
        live._epoch += 1  # nothing of this test's inspection is published any more


def test_the_first_snapshot_serves_trusted_plugins_while_untrusted_ones_load(
    gate: threading.Event,
) -> None:
    first = registry.current()  # this process's first build: no waiting for untrusted code
    assert first.get("example-config").ok  # type: ignore[union-attr]
    assert first.get("example-config").handler is not None  # type: ignore[union-attr]
    hang, healthy = first.get("hostile-import-hang"), first.get("hostile-healthy")
    assert hang is not None and healthy is not None
    assert hang.status is Status.LOADING and healthy.status is Status.LOADING
    assert hang.isolated and hang.handler is None and hang.manifest is None
    assert hang.reason == (
        f"importing in a sandboxed runner (deadline {settings.IMBI_PLUGIN_IMPORT_TIMEOUT:g}s "
        "per entry point)"
    )
    assert {e.name for e in first.loading()} >= {"hostile-import-hang", "hostile-healthy"}
    assert all(e.distribution == "imbi-plugin-hostile" for e in first.loading())
    assert registry.current() is first  # nothing published while the gate is closed
    # Daemon threads of this process: nothing joins them when the interpreter exits, so a
    # command or a stopping worker never waits for a hanging import.
    inspecting = [t for t in threading.enumerate() if t.name.startswith("imbi-plugin-import")]
    assert inspecting and all(t.daemon for t in inspecting)
    assert registry.inspecting_here()

    gate.set()
    settled = registry.wait_loaded(timeout=120)
    assert settled.loading() == []
    assert settled.generation > first.generation
    assert settled.get("hostile-healthy").ok  # type: ignore[union-attr]
    failed = settled.get("hostile-import-hang")
    assert failed is not None and failed.status is Status.IMPORT_FAILED
    assert failed.reason == (
        f"import did not finish within {settings.IMBI_PLUGIN_IMPORT_TIMEOUT:g}s"
    )
    # The first snapshot is immutable: a request holding it still sees what it saw.
    assert first.get("hostile-import-hang").status is Status.LOADING  # type: ignore[union-attr]


def test_a_forked_process_inspects_what_its_parent_left_loading(gate: threading.Event) -> None:
    """Threads do not survive a fork (Celery's pool children): a child whose inherited
    snapshot is loading starts its own inspection on its first ``current()``."""
    registry.current()
    parent_epoch = live._epoch
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it inspects, then leave without cleanup
        code = 1
        try:
            os.close(read)
            registry.current()
            restarted = live._inspector_pid == os.getpid()
            gate.set()
            snapshot = registry.wait_loaded(timeout=60)
            entry = snapshot.get("hostile-healthy")
            ok = restarted and live._epoch > parent_epoch and entry is not None and entry.ok
            os.write(write, b"ok" if ok else b"no")
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        report = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert report == b"ok"
    assert live._inspector_pid == os.getpid()  # the parent's own inspection is untouched


@pytest.fixture
def tabs(
    project: Project, install: Callable[..., Plugin], bind_project: Callable[..., Any]
) -> dict[str, str]:
    """The configuration tab served by the trusted example plugin (the default) and by
    'hostile-import-hang' (``?source=``)."""
    bind_project(install("example-config"), default=True)
    bind_project(install("hostile-import-hang"))
    base = f"/api/orgs/{project.organization.slug}/projects/{project.pk}/configuration"
    return {"healthy": base, "loading": f"{base}?source=hostile-import-hang"}


def test_requests_answer_at_once_while_a_hanging_plugin_loads(
    gate: threading.Event, api: Any, tabs: dict[str, str]
) -> None:
    viewer = api()
    with CaptureQueriesContext(connection) as first_queries:
        healthy = viewer.get(tabs["healthy"])
    assert healthy.status_code == 200, healthy.content
    # Answered in this process while the hanging plugin is still loading.
    assert registry.current().get("hostile-import-hang").status is Status.LOADING  # type: ignore[union-attr]

    with CaptureQueriesContext(connection) as loading_queries:
        loading = viewer.get(tabs["loading"])
    assert loading.status_code == 503
    assert loading["Content-Type"].startswith("application/problem+json")
    problem = loading.json()
    assert problem["code"] == "plugin_loading"
    assert "still loading" in problem["detail"] and "sandboxed runner" in problem["detail"]
    retry = int(loading["Retry-After"])
    assert 1 <= retry <= max(1, int(settings.IMBI_PLUGIN_IMPORT_TIMEOUT + 0.999))
    assert problem["retry_after"] == retry

    gate.set()
    registry.wait_loaded(timeout=120)
    with CaptureQueriesContext(connection) as settled_queries:
        failed = viewer.get(tabs["loading"])
    assert failed.status_code == 503
    assert failed.json()["code"] == "plugin_unavailable"
    assert (
        f"import did not finish within {settings.IMBI_PLUGIN_IMPORT_TIMEOUT:g}s"
        in failed.json()["detail"]
    )
    assert "Retry-After" not in failed
    # Loading costs no query of its own: the same queries as the settled answer.
    assert len(loading_queries) == len(settled_queries)
    cache.clear()  # the settled answer computed afresh, like the first one
    with CaptureQueriesContext(connection) as again_queries:
        again = viewer.get(tabs["healthy"])
    assert again.status_code == 200 and again.json() == healthy.json()
    # Serving while a plugin loads costs the healthy tab no query either.
    assert len(first_queries) == len(again_queries)


def test_the_registry_api_and_admin_show_the_loading_state(
    gate: threading.Event, api: Any, admin_client: Any, install: Callable[..., Plugin]
) -> None:
    plugin = install("hostile-import-hang")
    viewer = api()
    body = viewer.get("/api/plugins").json()
    entries = {e["name"]: e for e in body["entries"]}
    assert entries["hostile-import-hang"]["status"] == "loading"
    assert entries["hostile-import-hang"]["isolated_only"] is True
    assert body["loading"] == sum(1 for e in body["entries"] if e["status"] == "loading")
    assert body["loading"] >= 2
    page = admin_client.get(f"/admin/plugins_core/plugin/{plugin.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "importing in a sandboxed runner" in html  # the status's reason, beside "loading"
    installed = viewer.get(f"/api/orgs/{plugin.organization.slug}/plugins").json()
    [row] = [p for p in installed if p["slug"] == "hostile-import-hang"]
    assert row["status"] == "plugin_loading" and row["runs"] == "isolated"

    gate.set()
    registry.wait_loaded(timeout=120)
    body = viewer.get("/api/plugins").json()
    assert body["loading"] == 0
    entries = {e["name"]: e for e in body["entries"]}
    assert entries["hostile-import-hang"]["status"] == "import_failed"


def test_the_periodic_connection_test_leaves_a_loading_plugin_for_later(
    gate: threading.Event, install: Callable[..., Plugin]
) -> None:
    from plugins_core.models import ConnectionCheck
    from plugins_core.serving import health

    loading = install("hostile-import-hang")
    install("example-config")
    counts = health.check_all()
    assert counts == {"ok": counts["ok"], "failed": counts["failed"], "loading": 1}
    assert counts["ok"] + counts["failed"] == 1  # the example plugin was tested
    assert not ConnectionCheck.objects.filter(plugin=loading).exists()
    badge = health.badge(loading)
    assert (badge.status, badge.level) == ("plugin_loading", "unknown")

    gate.set()
    registry.wait_loaded(timeout=120)
    assert health.check_all()["loading"] == 0
    check = ConnectionCheck.objects.get(plugin=loading)
    assert check.status == "failed" and "import did not finish" in check.message


def test_system_checks_do_not_wait_and_name_the_loading_entry_points(
    gate: threading.Event,
) -> None:
    from plugins_core.registry.checks import check_plugins

    messages = check_plugins()
    infos = [m for m in messages if m.id == "plugins.I001"]
    assert len(infos) == 1
    assert "hostile-import-hang" in infos[0].msg and "hostile-healthy" in infos[0].msg
    warned = " ".join(m.msg for m in messages if m.id == "plugins.W001")
    assert "example-broken" in warned and "hostile-import-hang" not in warned

    gate.set()
    registry.wait_loaded(timeout=120)
    messages = check_plugins()
    assert not [m for m in messages if m.id == "plugins.I001"]
    warned = " ".join(m.msg for m in messages if m.id == "plugins.W001")
    assert "'hostile-import-hang' (imbi-plugin-hostile 0.1.0) is import_failed" in warned


def test_settled_waits_for_the_sandboxed_imports(gate: threading.Event) -> None:
    """What commands use (``manage.py check``, ``plugin install-template``): the snapshot
    once this process's imports finished, each bounded by the deadline."""
    assert registry.current().loading()
    threading.Timer(0.05, gate.set).start()  # opened from another thread while we wait
    snapshot = registry.settled()
    assert snapshot.loading() == []
    assert snapshot.get("hostile-import-hang").status is Status.IMPORT_FAILED  # type: ignore[union-attr]
