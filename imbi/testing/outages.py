"""Real outages of the suite's own servers, for the fault tests (tests/imbi/faults).

- ``redis_frozen()``: the suite's Redis is paused with SIGSTOP (it accepts nothing and answers
  nothing: every call waits for its timeout), and resumed with SIGCONT afterwards.
- ``redis_killed()``: the suite's Redis is stopped for good inside the block (SIGKILL) and
  started again afterwards on the same port, empty.
- ``postgres_down()``: the suite's PostgreSQL is stopped (``pg_ctl stop -m immediate``, as a
  crash would) and started again afterwards on the same port with the same data.

Every helper also clears this process's Redis outage latch (``imbi.core.cache``) afterwards,
so the tests that follow see a healthy cache at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

from . import pytest_plugin
from .services import Services, _run, _wait_for_port, postgres_bindir


def _services() -> Services:
    services = pytest_plugin.current_services()
    if services is None:
        raise RuntimeError("the test harness started no servers (run under pytest-django)")
    return services


def clear_latch() -> None:
    from imbi.core import cache

    with cache._lock:
        cache._down_until.clear()


@contextlib.contextmanager
def redis_frozen() -> Iterator[int]:
    """Pause the suite's Redis for the block; yields its pid."""
    pid = _services().redis_pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)
        clear_latch()


@contextlib.contextmanager
def redis_killed() -> Iterator[None]:
    """Kill the suite's Redis for the block; start it again (empty) on the same port."""
    services = _services()
    pid = services.redis_pid
    port = int(urlsplit(services.redis_url).port or 6379)
    data = services.root / "redis"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.02)
    try:
        yield
    finally:
        (data / "redis.pid").unlink(missing_ok=True)
        binary = shutil.which("redis-server") or "redis-server"
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
                str(data / "redis.pid"),
                "--dir",
                str(data),
                "--save",
                "",
                "--appendonly",
                "no",
                "--logfile",
                str(data / "redis.log"),
            ],
            "redis-server restart",
        )
        _wait_for_port(port, 15, "Redis")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (data / "redis.pid").exists():
            time.sleep(0.02)
        clear_latch()


def _pg_ctl(*args: str) -> None:
    services = _services()
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = services.root / "pg"
    _run([*prefix, str(postgres_bindir() / "pg_ctl"), "-D", str(data), *args], "pg_ctl")


def stop_postgres() -> None:
    _pg_ctl("-m", "immediate", "-w", "stop")


def start_postgres() -> None:
    services = _services()
    data = services.root / "pg"
    port = int(urlsplit(services.database_url).port or 5432)
    options = (
        f"-h 127.0.0.1 -p {port} -k {data} -c fsync=off -c full_page_writes=off "
        "-c synchronous_commit=off -c max_connections=100"
    )
    _pg_ctl("-o", options, "-l", str(data / "server.log"), "-w", "-t", "60", "start")
    _wait_for_port(port, 30, "PostgreSQL")


@contextlib.contextmanager
def postgres_down() -> Iterator[None]:
    """Stop the suite's PostgreSQL for the block (as a crash would); start it again after.
    Connections this process held are broken: the caller closes them (Django reconnects)."""
    stop_postgres()
    try:
        yield
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            start_postgres()
        from django.db import connections

        for connection in connections.all():
            connection.close_if_unusable_or_obsolete()
            with contextlib.suppress(Exception):
                connection.close()
