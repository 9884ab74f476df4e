"""Throwaway PostgreSQL and Redis servers for the test suite.

Each server runs from the OS binaries on 127.0.0.1, on a free port, with its data in a temp
folder, and is stopped afterwards. Nothing here connects to a server it did not start.
PostgreSQL refuses to run as root, so as root it runs under the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

INSTALL_HINT = (
    "apt-get install -y --no-install-recommends postgresql-15 redis-server "
    "(or run `make test` as root, which installs them)"
)


class ServiceError(RuntimeError):
    """A test service could not be started; the message says what to install or check."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise ServiceError(f"{what} did not accept connections on 127.0.0.1:{port} in {timeout}s")


def postgres_bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise ServiceError(f"PostgreSQL server binaries not found; install them: {INSTALL_HINT}")


@dataclass
class Services:
    """The running servers; ``stop()`` is idempotent."""

    root: Path
    database_url: str = ""
    redis_url: str = ""
    _stops: list[list[str]] = field(default_factory=list)
    _as_postgres: bool = False

    @property
    def redis_pid(self) -> int:
        """The Redis server's process id (tests pause it to simulate an outage)."""
        return int((self.root / "redis" / "redis.pid").read_text())

    def stop(self) -> None:
        while self._stops:
            command = self._stops.pop()
            subprocess.run(command, capture_output=True, check=False, timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise ServiceError(f"{what} failed: {' | '.join(tail)}")


def start_postgres(services: Services) -> None:
    bindir = postgres_bindir()
    data = services.root / "pg"
    data.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(services.root, user="postgres")
        shutil.chown(data, user="postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    _run(
        [
            *prefix,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "imbi",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ],
        "initdb",
    )
    port = free_port()
    options = (
        f"-h 127.0.0.1 -p {port} -k {data} -c fsync=off -c full_page_writes=off "
        "-c synchronous_commit=off -c max_connections=100"
    )
    _run(
        [
            *prefix,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(data / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
        "pg_ctl start",
    )
    services._stops.append(
        [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
    )
    _wait_for_port(port, 30, "PostgreSQL")
    services.database_url = f"postgres://imbi@127.0.0.1:{port}/imbi"


def start_redis(services: Services) -> None:
    binary = shutil.which("redis-server")
    if not binary:
        raise ServiceError(f"redis-server not found; install it: {INSTALL_HINT}")
    data = services.root / "redis"
    data.mkdir()
    port = free_port()
    pidfile = data / "redis.pid"
    _run(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--daemonize",
            "yes",
            "--pidfile",
            str(pidfile),
            "--dir",
            str(data),
            "--save",
            "",
            "--appendonly",
            "no",
            "--logfile",
            str(data / "redis.log"),
        ],
        "redis-server",
    )
    services._stops.append(["sh", "-c", f"kill $(cat {pidfile}) 2>/dev/null || true"])
    _wait_for_port(port, 15, "Redis")
    # Redis may accept connections a moment before it writes its pidfile.
    deadline = time.monotonic() + 15

    def written() -> bool:
        return pidfile.exists() and pidfile.read_text().strip().isdigit()

    while not written() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not written():
        raise ServiceError(f"Redis on 127.0.0.1:{port} wrote no pidfile in 15s")
    services.redis_url = f"redis://127.0.0.1:{port}/0"


def start_all() -> Services:
    services = Services(root=Path(tempfile.mkdtemp(prefix="imbi-test-")))
    services.root.chmod(0o755)
    try:
        start_postgres(services)
        start_redis(services)
    except Exception:
        services.stop()
        raise
    return services
