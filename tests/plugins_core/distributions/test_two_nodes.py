"""Two simulated nodes on this machine, real processes, real PostgreSQL and Redis.

Each node has its own plugin root (``IMBI_PLUGIN_ROOT``) and node id, a gunicorn with two
workers and a Celery worker with two pool children (its own queue, so the test can reach
both children of each node). Plugin distributions are changed the operator's way, with
``manage.py plugin install|upgrade|remove`` run as a separate process while everything serves:

- install: every web worker of both nodes lists the plugin in ``GET /api/plugins`` and serves
  calls to it, and every Celery child reports it;
- upgrade: all serve the new version, and a call already running completes on the old one;
- remove: none lists or serves it;
- a node stopped during an install converges when it starts, before it serves;
- with the broadcast never sent (``IMBI_PLUGIN_BROADCAST=0``), every process still converges
  through the generation check.

Each web answer names its worker (``Imbi-Worker: <node>:<pid>``), so the test proves it heard
from both workers of each node.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from imbi.testing.nodes import (
    TOKEN,
    Node,
    Platform,
    children_serve,
    each_worker,
    wait,
    web_serves,
)
from imbi.testing.nodes import platform as start_platform


def _wait(predicate: Callable[[], Any], timeout: float, what: str, platform: Platform) -> Any:
    return wait(predicate, timeout, what, platform)


def values(node: Node, project_id: int, keys: str = "") -> dict[str, httpx.Response]:
    path = f"/api/orgs/acme/projects/{project_id}/configuration/values"
    return each_worker(node, path, **({"keys": keys} if keys else {}))


def served_value(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["values"][0]["value"])


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, wheel_builder: Callable[..., Path]
) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("two-nodes")
    wheels: dict[str, Path] = {}
    builders = [
        threading.Thread(target=lambda v=v: wheels.update({v: wheel_builder(v, root / v)}))
        for v in ("1.0.0", "2.0.0")
    ]
    for builder in builders:  # in parallel with the migration and the nodes' start-up
        builder.start()
    redis_url = os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/11"
    with start_platform(root, os.environ["DATABASE_URL"], redis_url) as running:
        _wait(lambda: web_serves(running, None), 60, "both nodes to serve", running)
        for builder in builders:
            builder.join(timeout=120)
        assert set(wheels) == {"1.0.0", "2.0.0"}
        running.wheels = wheels
        yield running


def distributions(platform: Platform) -> dict[str, Any]:
    """The REST API's report (the admin page shows the same)."""
    response = httpx.get(
        f"http://127.0.0.1:{platform.nodes['node-a'].port}/api/plugin-distributions",
        headers={"Authorization": f"Token {TOKEN}"},
        timeout=15,
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def test_install_upgrade_remove_reach_every_process_of_both_nodes(platform: Platform) -> None:
    a = platform.nodes["node-a"]
    # Nothing serves the plugin yet; a call to its binding says so.
    assert web_serves(platform, None)
    before = values(a, platform.project_id)
    assert {r.status_code for r in before.values()} == {503}, [r.text for r in before.values()]

    # Install: manage.py on node a, while everything serves.
    out = platform.manage("plugin", "install", str(platform.wheels["1.0.0"]))
    assert "imbi-plugin-runtime-demo 1.0.0 installed" in out
    _wait(lambda: web_serves(platform, "1.0.0"), 30, "every web worker to list 1.0.0", platform)
    _wait(lambda: children_serve(platform, "1.0.0"), 30, "every Celery child: 1.0.0", platform)
    for node in platform.nodes.values():
        assert {served_value(r) for r in values(node, platform.project_id).values()} == {"1.0.0"}
    report = _wait(
        lambda: (
            (r := distributions(platform))
            and all(not n["behind"] for n in r["nodes"])
            and len(r["nodes"]) == 2
            and r
        ),
        30,
        "both nodes to report 1.0.0 ready",
        platform,
    )
    (dist,) = report["distributions"]
    assert dist["version"] == "1.0.0"
    assert {(n["node"], n["status"]) for n in dist["nodes"]} == {
        ("node-a", "ready"),
        ("node-b", "ready"),
    }

    # Upgrade while a slow call runs on 1.0.0: it completes on 1.0.0, new calls get 2.0.0.
    in_flight: dict[str, Any] = {}

    def slow_call() -> None:
        in_flight["response"] = httpx.get(
            f"http://127.0.0.1:{a.port}/api/orgs/acme/projects/{platform.project_id}"
            "/configuration/values",
            params={"keys": "slow"},
            headers={"Authorization": f"Token {TOKEN}"},
            timeout=30,
        )

    caller = threading.Thread(target=slow_call)
    caller.start()
    time.sleep(1.0)  # the call is inside the plugin (it sleeps 4 s)
    platform.manage("plugin", "upgrade", str(platform.wheels["2.0.0"]))
    _wait(lambda: web_serves(platform, "2.0.0"), 30, "every web worker to list 2.0.0", platform)
    _wait(lambda: children_serve(platform, "2.0.0"), 30, "every Celery child: 2.0.0", platform)
    for node in platform.nodes.values():
        assert {served_value(r) for r in values(node, platform.project_id).values()} == {"2.0.0"}
    caller.join(timeout=30)
    assert served_value(in_flight["response"]) == "1.0.0"

    # Remove: no process lists or serves it.
    platform.manage("plugin", "remove", "imbi-plugin-runtime-demo")
    _wait(lambda: web_serves(platform, None), 30, "no web worker to list it", platform)
    _wait(lambda: children_serve(platform, None), 30, "no Celery child to list it", platform)
    for node in platform.nodes.values():
        assert {r.status_code for r in values(node, platform.project_id).values()} == {503}
    assert distributions(platform)["distributions"] == []


def test_a_stopped_node_and_a_lost_broadcast_still_converge(platform: Platform) -> None:
    b = platform.nodes["node-b"]
    if distributions(platform)["distributions"]:  # the first test stopped half-way
        platform.manage("plugin", "remove", "imbi-plugin-runtime-demo")
    b.stop()
    platform.manage("plugin", "install", str(platform.wheels["1.0.0"]))
    _wait(lambda: web_serves(platform, "1.0.0"), 30, "node a to serve 1.0.0", platform)
    report = distributions(platform)
    behind = {n["node"]: n["behind"] for n in report["nodes"]}
    assert behind == {"node-a": False, "node-b": True}  # the admin shows node b behind

    # Node b starts after the install: it converges before it serves.
    b.start()
    _wait(lambda: web_serves(platform, "1.0.0"), 60, "node b to serve 1.0.0", platform)
    assert {served_value(r) for r in values(b, platform.project_id).values()} == {"1.0.0"}
    _wait(
        lambda: all(not n["behind"] for n in distributions(platform)["nodes"]),
        30,
        "node b to report",
        platform,
    )

    # An upgrade whose broadcast is never sent: every process converges anyway, building the
    # environment on demand, through the generation it checks on each request and task.
    platform.manage("plugin", "upgrade", str(platform.wheels["2.0.0"]), IMBI_PLUGIN_BROADCAST="0")
    _wait(lambda: web_serves(platform, "2.0.0"), 30, "web workers: 2.0.0, no nudge", platform)
    _wait(lambda: children_serve(platform, "2.0.0"), 30, "Celery children: 2.0.0", platform)
    platform.manage("plugin", "remove", "imbi-plugin-runtime-demo")
