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
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
import redis
from cryptography.fernet import Fernet

from imbi.testing.services import free_port

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
TOKEN = "rt-" + secrets.token_hex(16)
NODES = ("node-a", "node-b")

SEED = f"""
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from imbi.core.models import Membership, Organization, Project, ProjectType, Role
from plugins_core.models import Plugin, ProjectPlugin, ThirdPartyService
user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-{TOKEN}")
Token.objects.create(user=user, key="{TOKEN}")
org = Organization.objects.create(slug="acme", name="Acme")
Membership.objects.create(user=user, organization=org, role=Role.ADMIN)
ptype = ProjectType.objects.create(organization=org, slug="api", name="API")
project = Project.objects.create(organization=org, project_type=ptype, slug="svc", name="Svc")
service = ThirdPartyService.objects.create(
    organization=org, vendor="demo", name="Demo", slug="demo")
plugin = Plugin.objects.create(organization=org, service=service, slug="demo",
    plugin_type="configuration", handler="runtime-demo")
ProjectPlugin.objects.create(project=project, plugin=plugin, tab="configuration")
print(project.pk)
"""


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@dataclass
class Node:
    name: str
    env: dict[str, str]
    port: int
    log_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self) -> None:
        web = [
            str(BIN / "gunicorn"),
            "-c",
            str(ROOT / "imbi" / "gunicorn_conf.py"),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            "2",
            "--access-logfile",
            "/dev/null",
        ]
        worker = [
            str(BIN / "celery"),
            "-A",
            "imbi.celery",
            "worker",
            "--concurrency",
            "2",
            "--pool",
            "prefork",
            "--prefetch-multiplier",
            "1",
            "-n",
            f"{self.name}@%h",
            "-Q",
            f"celery,{self.name}",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ]
        for role, args in (("web", web), ("worker", worker)):
            log = open(self.log_dir / f"{self.name}-{role}.log", "ab")  # noqa: SIM115
            self.processes[role] = subprocess.Popen(
                args,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.processes.clear()

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.log_dir.glob(f"{self.name}-*.log"))
        )


@dataclass
class Platform:
    env: dict[str, str]
    nodes: dict[str, Node]
    wheels: dict[str, Path]
    project_id: int = 0
    celery: Any = None

    def manage(self, *args: str, node: str = "node-a", **extra: str) -> str:
        env = {**self.nodes[node].env, **extra}
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout


def _wait(predicate: Callable[[], Any], timeout: float, what: str, platform: Platform) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.2)
    logs = "\n".join(node.logs() for node in platform.nodes.values())
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})\n{logs}")


def each_worker(node: Node, path: str, **params: Any) -> dict[str, httpx.Response]:
    """One answer from each of the node's two gunicorn workers, by ``Imbi-Worker``."""
    seen: dict[str, httpx.Response] = {}
    headers = {"Authorization": f"Token {TOKEN}", "Connection": "close"}
    for _ in range(60):
        response = httpx.get(
            f"http://127.0.0.1:{node.port}{path}", headers=headers, params=params, timeout=15
        )
        seen.setdefault(response.headers["Imbi-Worker"], response)
        if len(seen) == 2:
            return seen
    raise AssertionError(f"{node.name}: heard from workers {sorted(seen)} only")


def registry_versions(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {e["name"]: e["version"] for e in response.json()["entries"] if e["status"] == "loaded"}


def web_serves(platform: Platform, version: str | None) -> bool:
    """Every web worker of every running node lists runtime-demo at ``version`` (or not)."""
    for node in platform.nodes.values():
        if not node.processes:
            continue
        for response in each_worker(node, "/api/plugins").values():
            if registry_versions(response).get("runtime-demo") != version:
                return False
    return True


def children_serve(platform: Platform, version: str | None) -> bool:
    """Every Celery child of every running node reports runtime-demo at ``version``."""
    for node in platform.nodes.values():
        if not node.processes:
            continue
        results = [
            platform.celery.send_task(
                "plugins_core.tasks.registry_report", kwargs={"pause": 0.3}, queue=node.name
            )
            for _ in range(4)
        ]
        reports = [r.get(timeout=20) for r in results]
        pids = {r["pid"] for r in reports}
        if len(pids) < 2:
            return False
        if any(r["entries"].get("runtime-demo") != version for r in reports):
            return False
    return True


def values(node: Node, project_id: int, keys: str = "") -> dict[str, httpx.Response]:
    path = f"/api/orgs/acme/projects/{project_id}/configuration/values"
    return each_worker(node, path, **({"keys": keys} if keys else {}))


def served_value(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["values"][0]["value"])


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, wheel_builder: Callable[[str, Path], Path]
) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("two-nodes")
    wheels: dict[str, Path] = {}
    builders = [
        threading.Thread(target=lambda v=v: wheels.update({v: wheel_builder(v, root / v)}))
        for v in ("1.0.0", "2.0.0")
    ]
    for builder in builders:  # in parallel with the migration and the nodes' start-up
        builder.start()
    database = f"imbi_runtime_{secrets.token_hex(4)}"
    admin_url = _with_database(os.environ["DATABASE_URL"], "postgres")
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{database}"')
    redis_url = os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/11"
    redis.Redis.from_url(redis_url).flushdb()
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "imbi.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "IMBI_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": _with_database(os.environ["DATABASE_URL"], database),
        "REDIS_URL": redis_url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "IMBI_PLUGIN_IMPORT_TIMEOUT": "2",
        "IMBI_PLUGIN_TIMEOUT": "10",
        "IMBI_PLUGIN_GENERATION_CHECK": "0.2",
        "IMBI_WORKER_HEADER": "1",
        "GUNICORN_TIMEOUT": "30",
        "LOG_LEVEL": "INFO",
    }
    nodes = {}
    for name in NODES:
        folder = root / name
        (folder / "data").mkdir(parents=True)
        env = {
            **base,
            "IMBI_NODE_ID": name,
            "IMBI_DATA_DIR": str(folder / "data"),
            "IMBI_PLUGIN_ROOT": str(folder / "plugins"),
        }
        nodes[name] = Node(name, env, free_port(), folder)
    platform = Platform(base, nodes, wheels)
    from celery import Celery

    platform.celery = Celery("probe", broker=redis_url, backend=redis_url)
    try:
        platform.manage("migrate", "--noinput", "--skip-checks")
        platform.project_id = int(platform.manage("shell", "-c", SEED).strip().splitlines()[-1])
        for node in nodes.values():
            node.start()
        _wait(lambda: web_serves(platform, None), 60, "both nodes to serve", platform)
        for builder in builders:
            builder.join(timeout=120)
        assert set(wheels) == {"1.0.0", "2.0.0"}
        yield platform
    finally:
        for node in nodes.values():
            node.stop()
        redis.Redis.from_url(redis_url).flushdb()
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


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
