"""docker/compose.yaml, run for real without Docker: every app service's command as a process.

No Docker engine is reachable here, so this test does what compose would: it reads
docker/compose.yaml, interpolates it with a docker/.env-style file, builds each container's
environment (the Dockerfile's ``ENV``, then ``env_file``, then ``environment``) and runs each
service's ``command`` (and health check) from the repository root, which is the image's
``/app``. PostgreSQL and Redis are the harness's (their URLs come from the ``.env`` file,
which proves that ``.env`` overrides them). The image's build step (``collectstatic``) is run
the way the Dockerfile runs it.

Checked: ``migrate`` runs once and nothing else migrates; ``web`` becomes healthy through its
health-check command; the admin's CSS and the project page's script are served (200, right
content type, compressed); a login through the TLS proxy's ``X-Forwarded-Proto`` works;
the worker answers ``inspect ping`` with its tasks registered, and the beat process makes it
run the periodic connection test; every process stops on SIGTERM.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
import redis
import yaml
from cryptography.fernet import Fernet

from imbi.testing.services import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
BIN = Path(sys.executable).parent
HOST = "imbi.example.com"
PROXY = {"Host": HOST, "X-Forwarded-Proto": "https"}


# --- compose semantics ----------------------------------------------------------------------


class InterpolationError(ValueError):
    pass


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """Compose's ``$$``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?err}``,
    ``${VAR?err}`` (defaults may nest)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            depth, j = 1, i + 2
            while depth:
                if j >= len(text):
                    raise InterpolationError(f"unclosed ${{ at {i}")
                if text.startswith("${", j):
                    depth, j = depth + 1, j + 2
                    continue
                depth += {"}": -1}.get(text[j], 0)
                j += 1
            out.append(_expand(text[i + 2 : j - 1], variables))
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _expand(expression: str, variables: Mapping[str, str]) -> str:
    match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)(:?[-?])?(.*)", expression, re.S)
    assert match, expression
    name, operator, rest = match.groups()
    value = variables.get(name)
    unset_or_empty = not value if operator and operator.startswith(":") else value is None
    if operator in (":-", "-"):
        return interpolate(rest, variables) if unset_or_empty else str(value)
    if operator in (":?", "?"):
        if unset_or_empty:
            raise InterpolationError(f"{name}: {rest}")
        return str(value)
    return value or ""


def interpolate_tree(node: Any, variables: Mapping[str, str]) -> Any:
    """Interpolate every string value of the parsed file, as compose does (not comments)."""
    if isinstance(node, dict):
        return {k: interpolate_tree(v, variables) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(v, variables) for v in node]
    return interpolate(node, variables) if isinstance(node, str) else node


def read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            values[name.strip()] = value.strip()
    return values


def dockerfile_env() -> dict[str, str]:
    """The image's ``ENV`` (``KEY=value`` pairs, continuation lines joined)."""
    text = (DOCKER / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for pair in line[4:].split():
                name, value = pair.split("=", 1)
                env[name] = value
    return env


def in_repo(value: str) -> str:
    """Image paths under /app are the repository root here."""
    return str(ROOT) + value[4:] if value == "/app" or value.startswith("/app/") else value


def executable(args: list[str]) -> list[str]:
    first = {"python": sys.executable}.get(args[0], args[0])
    if (BIN / first).exists():
        first = str(BIN / first)
    return [first, *args[1:]]


@dataclass
class Service:
    name: str
    command: list[str]
    env: dict[str, str]
    spec: dict[str, Any]

    def health_command(self) -> list[str]:
        test = self.spec["healthcheck"]["test"]
        if test[0] == "CMD":
            return executable(test[1:])
        assert test[0] == "CMD-SHELL"
        assert len(test) == 2
        command = test[1]
        if command.startswith("exec celery "):  # run the venv's celery in the shell
            command = command.replace("exec celery ", f"exec {BIN / 'celery'} ", 1)
        return ["sh", "-c", command]


@dataclass
class Stack:
    root: Path
    dotenv: dict[str, str]
    services: dict[str, Service]
    port: int
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    outputs: dict[str, Path] = field(default_factory=dict)

    def run(self, name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``docker compose run --rm <name> <args>``: a one-off command in that container."""
        service = self.services[name]
        command = executable(list(args)) if args else service.command
        return subprocess.run(
            command,
            cwd=ROOT,
            env=service.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, name: str) -> None:
        service = self.services[name]
        log = self.root / f"{name}.log"
        self.outputs[name] = log
        with log.open("wb") as handle:
            self.processes[name] = subprocess.Popen(
                service.command,
                cwd=ROOT,
                env=service.env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self, name: str) -> str:
        return self.outputs[name].read_text(errors="replace")

    def stop(self, name: str, timeout: float = 20) -> int | None:
        process = self.processes[name]
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
                return None
        return process.returncode


def load_stack(root: Path, dotenv_path: Path) -> dict[str, Service]:
    dotenv = read_dotenv(dotenv_path)
    compose = interpolate_tree(yaml.safe_load((DOCKER / "compose.yaml").read_text()), dotenv)
    image_env = {name: in_repo(value) for name, value in dockerfile_env().items()}
    base = {
        "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(root),
        "HOSTNAME": socket.gethostname(),
        "LANG": "C.UTF-8",
    }
    services = {}
    for name, spec in compose["services"].items():
        if "build" not in spec:
            continue  # postgres and redis: the harness's servers stand in for them
        env = {**base, **image_env}
        for entry in spec.get("env_file", []):
            path = entry["path"] if isinstance(entry, dict) else entry
            env.update(read_dotenv(dotenv_path.parent / path))
        env.update({k: "" if v is None else str(v) for k, v in spec["environment"].items()})
        services[name] = Service(name, executable(spec["command"]), env, spec)
    return services


# --- the stack --------------------------------------------------------------------------------


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("compose")
    database = f"imbi_compose_{secrets.token_hex(4)}"
    admin_url = _with_database(os.environ["DATABASE_URL"], "postgres")
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{database}"')
    redis_url = os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/9"
    port = free_port()
    # docker/.env as an operator writes it, pointing at this machine's servers.
    dotenv = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "IMBI_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "POSTGRES_PASSWORD": "unused-the-harness-trusts-loopback",
        "DATABASE_URL": _with_database(os.environ["DATABASE_URL"], database),
        "REDIS_URL": redis_url,
        "ALLOWED_HOSTS": HOST,
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "CELERY_CONCURRENCY": "1",
        "CELERY_BEAT_SCHEDULE_FILE": str(root / "celerybeat-schedule"),
        "IMBI_CONNECTION_CHECK_INTERVAL": "1",
        "STATIC_ROOT": str(root / "static"),
        "IMBI_DATA_DIR": str(root / "data"),
    }
    (root / ".env").write_text("".join(f"{k}={v}\n" for k, v in dotenv.items()))
    stack = Stack(root, dotenv, load_stack(root, root / ".env"), port)
    try:
        yield stack
    finally:
        for name in list(stack.processes):
            stack.stop(name)
        redis.Redis.from_url(redis_url).flushdb()
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _build_static(stack: Stack) -> subprocess.Popen[str]:
    """The Dockerfile's build step, with the image's environment (STATIC_ROOT from .env)."""
    assert "sh /app/docker/collectstatic.sh" in (DOCKER / "Dockerfile").read_text()
    env = {**stack.services["web"].env}
    for name in ("SECRET_KEY", "IMBI_ENCRYPTION_KEYS", "DATABASE_URL", "REDIS_URL"):
        env.pop(name)  # a build has no secrets
    return subprocess.Popen(
        ["sh", str(DOCKER / "collectstatic.sh")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _cookies(response: httpx.Response, jar: dict[str, str]) -> dict[str, str]:
    """Secure cookies, kept by hand: the proxy speaks HTTPS to browsers, HTTP to the app."""
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        jar[name.strip()] = rest.split(";", 1)[0]
        assert "secure" in header.lower(), header
    return jar


def _cookie_header(jar: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}


def test_the_compose_stack_runs_as_written(stack: Stack) -> None:
    services = stack.services
    assert set(services) == {"migrate", "web", "worker", "beat"}
    for name in ("web", "worker", "beat"):
        assert "migrate" not in services[name].command
        assert services[name].spec["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
        # .env overrides what the compose file would otherwise point at
        assert services[name].env["DATABASE_URL"] == stack.dotenv["DATABASE_URL"]
        assert services[name].env["REDIS_URL"] == stack.dotenv["REDIS_URL"]
        assert services[name].env["DJANGO_SETTINGS_MODULE"] == "imbi.settings.production"

    build = _build_static(stack)  # the image build, while the database is migrated etc.

    # migrate: once, to completion; a second run (an upgrade with nothing new) is a no-op.
    first = stack.run("migrate")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "Applying plugins_core" in first.stdout
    again = stack.run("migrate")
    assert again.returncode == 0 and "No migrations to apply." in again.stdout

    for name in ("web", "worker", "beat"):
        stack.start(name)

    # The first superuser, as docker/README.md says (`docker compose run --rm web ...`), and
    # demo data, while the servers boot.
    password = secrets.token_urlsafe(16)
    one_offs = [
        subprocess.Popen(
            executable(args),
            cwd=ROOT,
            env={**services["web"].env, **extra},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args, extra in (
            (
                ["python", "manage.py", "createsuperuser", "--noinput"],
                {
                    "DJANGO_SUPERUSER_USERNAME": "root",
                    "DJANGO_SUPERUSER_EMAIL": "root@example.com",
                    "DJANGO_SUPERUSER_PASSWORD": password,
                },
            ),
            (["python", "manage.py", "seed_demo"], {}),
        )
    ]

    # web: healthy through its own health-check command.
    health = services["web"].health_command()

    def healthy() -> bool:
        assert stack.processes["web"].poll() is None, stack.output("web")
        return subprocess.run(health, env=services["web"].env, capture_output=True).returncode == 0

    _wait(healthy, 40, "web's health check")
    _, build_errors = build.communicate(timeout=180)  # pages need the static manifest
    assert build.returncode == 0, build_errors[-2000:]
    assert (Path(stack.dotenv["STATIC_ROOT"]) / "staticfiles.json").exists()
    for one_off in one_offs:
        _, errors = one_off.communicate(timeout=120)
        assert one_off.returncode == 0, errors[-2000:]

    with httpx.Client(base_url=f"http://127.0.0.1:{stack.port}", timeout=10) as client:
        # Without the proxy's header, plain HTTP is redirected to HTTPS...
        plain = client.get("/admin/login/", headers={"Host": HOST})
        assert plain.status_code == 301
        assert plain.headers["location"] == f"https://{HOST}/admin/login/"

        # /healthz is exempt, so a load balancer can probe the app directly.
        probe = client.get("/healthz", headers={"Host": HOST})
        assert probe.status_code == 200
        assert probe.json()["checks"]["redis"]["ok"] is True

        # ...with it, the login page and its hashed, compressed admin CSS are served.
        jar: dict[str, str] = {}
        page = client.get("/admin/login/", headers=PROXY)
        assert page.status_code == 200
        assert page.headers["strict-transport-security"].startswith("max-age=")
        _cookies(page, jar)
        css_url = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page.text)
        assert css_url, "the admin page does not link hashed CSS"
        css = client.get(css_url.group(1), headers={**PROXY, "Accept-Encoding": "gzip"})
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        assert css.headers["content-encoding"] == "gzip"
        assert "immutable" in css.headers["cache-control"]
        assert b"body" in css.content

        # Login through the proxy header: CSRF and Secure cookies as a browser would see them.
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token
        login = client.post(
            "/admin/login/?next=/admin/",
            headers={
                **PROXY,
                **_cookie_header(jar),
                "Origin": f"https://{HOST}",
                "Referer": f"https://{HOST}/admin/login/",
            },
            data={
                "csrfmiddlewaretoken": token.group(1),
                "username": "root",
                "password": password,
                "next": "/admin/",
            },
        )
        assert login.status_code == 302, login.text[:500]
        assert login.headers["location"] == "/admin/"
        _cookies(login, jar)
        assert "sessionid" in jar
        admin = client.get("/admin/", headers={**PROXY, **_cookie_header(jar)})
        assert admin.status_code == 200
        assert "root" in admin.text

        # The project page loads its script under its hashed name.
        projects = client.get("/projects/", headers={**PROXY, **_cookie_header(jar)})
        assert projects.status_code == 200
        link = re.search(r'href="(/projects/demo/\d+/)"', projects.text)
        assert link, projects.text[:1000]
        project = client.get(link.group(1), headers={**PROXY, **_cookie_header(jar)})
        assert project.status_code == 200
        script = re.search(r'src="(/static/plugins_core/project\.[0-9a-f]{12}\.js)"', project.text)
        assert script, "the project page does not load its hashed script"
        js = client.get(script.group(1), headers=PROXY)
        assert js.status_code == 200
        assert js.headers["content-type"].startswith("text/javascript")
        assert js.content == (ROOT / "plugins_core/static/plugins_core/project.js").read_bytes()

    # worker: answers its own health check (inspect ping) and has the periodic task.
    worker = services["worker"]
    ping = subprocess.run(
        worker.health_command(), env=worker.env, capture_output=True, text=True, timeout=60
    )
    assert ping.returncode == 0, ping.stdout + ping.stderr + stack.output("worker")
    assert "pong" in ping.stdout
    registered = stack.run("worker", "celery", "-A", "imbi.celery", "inspect", "registered")
    assert registered.returncode == 0, registered.stderr
    assert "plugins_core.tasks.check_connections" in registered.stdout

    # beat schedules the connection test every second here; the worker runs it.
    _wait(
        lambda: "connection test demo/local-config: ok" in stack.output("worker"),
        30,
        "the worker to run the beat-scheduled connection test",
    )
    worker_log = stack.output("worker")
    assert "Scheduler: Sending due task check-connections" in stack.output("beat")
    for secret in (stack.dotenv["SECRET_KEY"], stack.dotenv["IMBI_ENCRYPTION_KEYS"]):
        assert secret not in worker_log

    # Every command runs its server as the container's main process: SIGTERM stops it cleanly.
    for name in ("web", "worker", "beat"):
        stack.processes[name].send_signal(signal.SIGTERM)  # once: a second one is a cold stop
    for name in ("web", "worker", "beat"):
        assert stack.processes[name].wait(30) == 0, stack.output(name)[-2000:]
