"""Simulated nodes on this machine: real gunicorn and Celery processes per node.

``platform(root, database_url, redis_url)`` creates a database, migrates it, seeds a
superuser with an API token, an organization and a project bound to the ``runtime-demo``
plugin, and starts each node: a gunicorn with two workers and a Celery worker with two pool
children (listening on the queue named after the node), with its own ``IMBI_NODE_ID`` and
``IMBI_PLUGIN_ROOT``, production settings and ``IMBI_WORKER_HEADER`` on. Used by the two-node
test (tests/plugins_core/distributions) and by ``python -m bench.runtime``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .services import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TOKEN = "rt-" + secrets.token_hex(16)

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


def with_database(url: str, name: str) -> str:
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
            with open(self.log_dir / f"{self.name}-{role}.log", "ab") as log:
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
    project_id: int = 0
    celery: Any = None
    wheels: dict[str, Path] = field(default_factory=dict)

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
        if done.returncode != 0:
            raise AssertionError(done.stderr[-3000:])
        return done.stdout + done.stderr

    def logs(self) -> str:
        return "\n".join(node.logs() for node in self.nodes.values())


def wait(predicate: Callable[[], Any], timeout: float, what: str, platform: Platform) -> Any:
    """Poll ``predicate`` until it returns something true; fail with every node's log."""
    import httpx

    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})\n{platform.logs()}")


@contextlib.contextmanager
def platform(
    root: Path,
    database_url: str,
    redis_url: str,
    *,
    nodes: tuple[str, ...] = ("node-a", "node-b"),
    before_start: Callable[[], None] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Platform]:
    """Create the database, start every node; stop and drop everything afterwards.
    ``env`` overrides the nodes' environment (e.g. ``IMBI_PLUGIN_IMPORT_TIMEOUT``)."""
    import psycopg
    import redis
    from celery import Celery
    from cryptography.fernet import Fernet

    database = f"imbi_runtime_{secrets.token_hex(4)}"
    admin_url = with_database(database_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{database}"')
    redis.Redis.from_url(redis_url).flushdb()
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "imbi.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "IMBI_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": with_database(database_url, database),
        "REDIS_URL": redis_url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "IMBI_PLUGIN_IMPORT_TIMEOUT": "2",
        "IMBI_PLUGIN_TIMEOUT": "10",
        "IMBI_PLUGIN_GENERATION_CHECK": "0.2",
        "IMBI_WORKER_HEADER": "1",
        "GUNICORN_TIMEOUT": "30",
        "LOG_LEVEL": "INFO",
        **(env or {}),
    }
    members = {}
    for name in nodes:
        folder = root / name
        (folder / "data").mkdir(parents=True, exist_ok=True)
        env = {
            **base,
            "IMBI_NODE_ID": name,
            "IMBI_DATA_DIR": str(folder / "data"),
            "IMBI_PLUGIN_ROOT": str(folder / "plugins"),
        }
        members[name] = Node(name, env, free_port(), folder)
    result = Platform(base, members)
    result.celery = Celery("probe", broker=redis_url, backend=redis_url)
    try:
        result.manage("migrate", "--noinput", "--skip-checks")
        result.project_id = int(result.manage("shell", "-c", SEED).strip().splitlines()[-1])
        if before_start is not None:
            before_start()
        for node in members.values():
            node.start()
        yield result
    finally:
        for node in members.values():
            node.stop()
        redis.Redis.from_url(redis_url).flushdb()
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def each_worker(node: Node, path: str, **params: Any) -> dict[str, Any]:
    """One answer from each of the node's two gunicorn workers, by ``Imbi-Worker``."""
    import httpx

    seen: dict[str, Any] = {}
    headers = {"Authorization": f"Token {TOKEN}", "Connection": "close"}
    deadline = time.monotonic() + 20  # a worker may be busy with a slow call meanwhile
    while time.monotonic() < deadline:
        response = httpx.get(
            f"http://127.0.0.1:{node.port}{path}", headers=headers, params=params, timeout=15
        )
        seen.setdefault(response.headers["Imbi-Worker"], response)
        if len(seen) == 2:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"{node.name}: heard from workers {sorted(seen)} only")


def registry_versions(response: Any) -> dict[str, str]:
    if response.status_code != 200:
        raise AssertionError(response.text)
    return {e["name"]: e["version"] for e in response.json()["entries"] if e["status"] == "loaded"}


def web_serves(platform: Platform, version: str | None, name: str = "runtime-demo") -> bool:
    """Every web worker of every running node lists ``name`` at ``version`` (or not)."""
    for node in platform.nodes.values():
        if not node.processes:
            continue
        for response in each_worker(node, "/api/plugins").values():
            if registry_versions(response).get(name) != version:
                return False
    return True


def children_report(platform: Platform, node: Node, tries: int = 5) -> list[dict[str, Any]]:
    """``registry_report`` from both Celery pool children of ``node`` (a burst of busy tasks
    reaches every child; retried until two pids answered)."""
    reports: list[dict[str, Any]] = []
    for _ in range(tries):
        results = [
            platform.celery.send_task(
                "plugins_core.tasks.registry_report", kwargs={"pause": 0.3}, queue=node.name
            )
            for _ in range(4)
        ]
        reports = [r.get(timeout=30) for r in results]
        if len({r["pid"] for r in reports}) >= 2:
            return reports
    raise AssertionError(f"{node.name}: heard from Celery children {reports}")


def children_serve(platform: Platform, version: str | None, name: str = "runtime-demo") -> bool:
    """Every Celery child of every running node reports ``name`` at ``version``."""
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
        if len({r["pid"] for r in reports}) < 2:
            return False
        if any(r["entries"].get(name) != version for r in reports):
            return False
    return True
