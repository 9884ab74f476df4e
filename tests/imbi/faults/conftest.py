"""Fault tests (issue 21): real gunicorn processes on the suite's own PostgreSQL and Redis,
which ``imbi.testing.outages`` stops, kills or freezes."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from django.conf import settings

from imbi.testing.services import free_port

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
HOST = "imbi.test"


def database_url() -> str:
    from django.db import connection

    url = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(url._replace(path=f"/{connection.settings_dict['NAME']}"))


def production_env(tmp: Path, **extra: str) -> dict[str, str]:
    (tmp / "data").mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "imbi.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "IMBI_ENCRYPTION_KEYS": ",".join(settings.IMBI_ENCRYPTION_KEYS),
        "DATABASE_URL": database_url(),
        "REDIS_URL": os.environ["REDIS_URL"],
        "ALLOWED_HOSTS": HOST,
        "IMBI_DATA_DIR": str(tmp / "data"),
        "IMBI_PLUGIN_ROOT": str(tmp / "plugins"),
        "IMBI_PLUGIN_IMPORT_TIMEOUT": "2",
        "LOG_LEVEL": "INFO",
        **extra,
    }


@dataclass
class Web:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Host": HOST, "X-Forwarded-Proto": "https", **kwargs.pop("headers", {})}
        return httpx.get(
            f"http://127.0.0.1:{self.port}{path}", headers=headers, timeout=30, **kwargs
        )

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_web(
    env: dict[str, str], tmp: Path, *args: str, bind: bool = True, wrap: list[str] | None = None
) -> Web:
    """gunicorn on ``env``; ``wrap`` is a command prefix (it must ``exec "$@"``)."""
    port = int(env["PORT"]) if "PORT" in env else free_port()
    log = tmp / f"web-{port}.log"
    where = ["--bind", f"127.0.0.1:{port}"] if bind else []
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [
                *(wrap or []),
                str(BIN / "gunicorn"),
                "-c",
                "python:imbi.gunicorn_conf",
                *where,
                "--workers",
                "1",
                *args,
            ],
            cwd=tmp,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    web = Web(process, port, log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited {process.returncode}:\n{web.logs()}")
        try:
            if web.get("/livez").status_code == 200:
                return web
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    web.stop()
    raise AssertionError(f"gunicorn did not answer /livez:\n{web.logs()}")


@pytest.fixture
def web_server(transactional_db: Any, tmp_path: Path) -> Iterator[Callable[..., Web]]:
    """Start gunicorn (production settings) on the suite's test database; stopped after."""
    started: list[Web] = []

    def start(*, bind: bool = True, wrap: list[str] | None = None, **extra: str) -> Web:
        web = start_web(production_env(tmp_path, **extra), tmp_path, bind=bind, wrap=wrap)
        started.append(web)
        return web

    yield start
    for web in started:
        web.stop()
