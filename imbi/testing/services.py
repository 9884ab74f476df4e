"""Throwaway PostgreSQL and Redis servers for the test suite.

Each server runs from the OS binaries on 127.0.0.1, on a free port, with its data in a temp
folder, and is stopped afterwards. Nothing here connects to a server it did not start.
PostgreSQL refuses to run as root, so as root it runs under the ``postgres`` user.

The servers die with the process that started them, however it ends: each ``Services``
starts a small reaper process (its own session, so Ctrl-C does not reach it) that holds the
read end of a pipe whose write end only the owner holds. ``stop()`` tells the reaper it is
done; if the owner dies first (SIGKILL, OOM, a killed CI job), the pipe closes and the reaper
runs the same stop commands and removes the temp folder. ``sweep_stale()`` additionally stops
the servers of a folder whose owner and reaper are both gone (only folders this module wrote
an ``owner.json`` into, i.e. servers it started).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

INSTALL_HINT = (
    "apt-get install -y --no-install-recommends postgresql-15 redis-server "
    "(or run `make test` as root, which installs them)"
)


# The reaper: reads stop commands (JSON lines) until "done" or EOF; on EOF it runs them.
# It forks away at once (and says its pid), so it is nobody's descendant: tests that check a
# process leaves no children behind (tests/plugins_core/isolation) never see it.
REAPER = """
import json, os, shutil, subprocess, sys
if os.fork():
    os._exit(0)
print(os.getpid(), flush=True)
sys.stdout.close()
root, stops = sys.argv[1], []
for line in sys.stdin:
    if line.strip() == "done":
        sys.exit(0)
    stops.append(json.loads(line))
for command in reversed(stops):
    subprocess.run(command, capture_output=True, check=False, timeout=30)
shutil.rmtree(root, ignore_errors=True)
"""
PREFIX = "imbi-test-"
OWNER_FILE = "owner.json"


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
    _reaper: subprocess.Popen[bytes] | None = None
    _reaper_pid: int = 0

    @property
    def redis_pid(self) -> int:
        """The Redis server's process id (tests pause it to simulate an outage)."""
        return int((self.root / "redis" / "redis.pid").read_text())

    def on_stop(self, command: list[str]) -> None:
        """Run ``command`` at ``stop()``, or from the reaper if this process dies first."""
        if self._reaper is None:
            self._reaper = subprocess.Popen(
                [sys.executable, "-I", "-c", REAPER, str(self.root)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            assert self._reaper.stdout is not None
            self._reaper_pid = int(self._reaper.stdout.readline() or 0)
            self._reaper.stdout.close()
            self._reaper.wait(timeout=30)  # the parent half exits once it has forked
        assert self._reaper.stdin is not None
        self._reaper.stdin.write(json.dumps(command).encode() + b"\n")
        self._reaper.stdin.flush()
        self._stops.append(command)
        with contextlib.suppress(OSError):
            (self.root / OWNER_FILE).write_text(
                json.dumps({"pids": [os.getpid(), self._reaper_pid], "stops": self._stops})
            )

    def stop(self) -> None:
        while self._stops:
            command = self._stops.pop()
            subprocess.run(command, capture_output=True, check=False, timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)
        reaper, self._reaper = self._reaper, None
        if reaper is not None and reaper.stdin is not None:
            with contextlib.suppress(OSError):
                reaper.stdin.write(b"done\n")
                reaper.stdin.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale() -> list[Path]:
    """Stop the servers of every ``imbi-test-*`` folder this module started whose owner and
    reaper are both dead (e.g. the reaper was killed too); returns the folders removed."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        try:
            owner = json.loads((folder / OWNER_FILE).read_text())
            pids, stops = owner["pids"], owner["stops"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not ours, or still being written
        if any(_alive(int(pid)) for pid in pids):
            continue
        for command in reversed(stops):
            subprocess.run(command, capture_output=True, check=False, timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


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
    # registered first: a start cut short by a kill is still stopped (a no-op if never up)
    services.on_stop(
        [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
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
    # SIGTERM, then SIGCONT in case a test left it paused (tests/plugins_core/test_redis_outage)
    services.on_stop(
        ["sh", "-c", f"pid=$(cat {pidfile} 2>/dev/null) && kill $pid && kill -CONT $pid || true"]
    )
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
    sweep_stale()
    services = Services(root=Path(tempfile.mkdtemp(prefix=PREFIX)))
    services.root.chmod(0o755)
    try:
        start_postgres(services)
        start_redis(services)
    except Exception:
        services.stop()
        raise
    return services
