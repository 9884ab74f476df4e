"""Point 9 of issue 21: the non-container install in docs/operations.md works as written.

The three systemd units and the environment file are read from the docs; their
``ExecStart`` commands run (paths moved from /opt/imbi to this checkout and its virtualenv,
the documented environment file filled with the suite's database and Redis): the web unit
answers ``/livez`` on loopback, the worker becomes ready, beat starts. ``systemd-analyze
verify`` accepts the units when it is installed. env.example sets DJANGO_SETTINGS_MODULE.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from imbi.testing.services import free_port

from .conftest import BIN, ROOT, production_env

DOCS = (ROOT / "docs" / "operations.md").read_text()
UNITS = ("imbi-web", "imbi-worker", "imbi-beat")


def unit(name: str) -> str:
    found = re.search(rf"`/etc/systemd/system/{name}\.service`[^`]*```ini\n(.*?)```", DOCS, re.S)
    assert found, f"{name}.service is not in docs/operations.md"
    return found.group(1)


def directive(text: str, key: str) -> str:
    found = re.search(rf"^{key}=(.*)$", text, re.M)
    assert found, key
    return found.group(1)


def documented_env() -> dict[str, str]:
    block = re.search(r"`/etc/imbi/imbi\.env`.*?```sh\n(.*?)```", DOCS, re.S)
    assert block
    pairs = [line.split("=", 1) for line in block.group(1).splitlines() if "=" in line]
    return {k: v for k, v in pairs if not k.startswith("#")}


def test_env_example_and_the_env_file_set_production_settings() -> None:
    example = (ROOT / "docker" / "env.example").read_text().splitlines()
    assert "DJANGO_SETTINGS_MODULE=imbi.settings.production" in example
    assert documented_env()["DJANGO_SETTINGS_MODULE"] == "imbi.settings.production"


def test_every_unit_stays_stopped_on_a_refused_start() -> None:
    for name in UNITS:
        text = unit(name)
        assert directive(text, "RestartPreventExitStatus") == "3"
        assert directive(text, "EnvironmentFile") == "/etc/imbi/imbi.env"
        assert directive(text, "ExecStart").startswith("/opt/imbi/.venv/bin/")


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    env_file = tmp_path / "imbi.env"
    env_file.write_text("DJANGO_SETTINGS_MODULE=imbi.settings.production\n")
    paths = []
    for name in UNITS:
        text = (
            unit(name)
            .replace("/opt/imbi/.venv/bin/", f"{BIN}/")
            .replace("/opt/imbi", str(ROOT))
            .replace("/etc/imbi/imbi.env", str(env_file))
            .replace("/var/lib/imbi", str(tmp_path))
            .replace("User=imbi", "User=root")
            .replace("Group=imbi", "Group=root")
        )
        path = tmp_path / f"{name}.service"
        path.write_text(text)
        paths.append(str(path))
    done = subprocess.run(
        ["systemd-analyze", "verify", *paths], capture_output=True, text=True, timeout=60
    )
    problems = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if "imbi-" in line and "service" in line
    ]
    assert not problems, done.stdout + done.stderr


def test_the_documented_commands_run(transactional_db: Any, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **production_env(tmp_path),
        **{k: v for k, v in documented_env().items() if k == "DJANGO_SETTINGS_MODULE"},
        "PORT": str(port),
        "IMBI_DATA_DIR": str(tmp_path / "data"),
        "IMBI_PLUGIN_ROOT": str(tmp_path / "plugins"),
        "ALLOWED_HOSTS": "imbi.example.com",
    }
    expect = {
        "imbi-web": f"Listening at: http://127.0.0.1:{port}",
        "imbi-worker": " ready.",
        "imbi-beat": "beat: Starting...",
    }
    processes: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    try:
        for name in UNITS:
            text = unit(name)
            command = shlex.split(
                directive(text, "ExecStart")
                .replace("/opt/imbi/.venv/bin/", f"{BIN}/")
                .replace("/var/lib/imbi", str(tmp_path))
            )
            cwd = directive(text, "WorkingDirectory").replace("/opt/imbi", str(ROOT))
            cwd = cwd.replace("/var/lib/imbi", str(tmp_path))
            log = tmp_path / f"{name}.log"
            with open(log, "ab") as out:
                processes[name] = (
                    subprocess.Popen(
                        command,
                        cwd=cwd,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    ),
                    log,
                )
        deadline = time.monotonic() + 120
        pending = set(UNITS)
        while pending and time.monotonic() < deadline:
            for name in sorted(pending):
                process, log = processes[name]
                assert process.poll() is None, f"{name} exited:\n{log.read_text()[-3000:]}"
                if expect[name] in log.read_text():
                    pending.discard(name)
            time.sleep(0.3)
        assert not pending, {n: processes[n][1].read_text()[-2000:] for n in pending}
        live = httpx.get(f"http://127.0.0.1:{port}/livez", headers={"Host": "imbi.example.com"})
        assert live.status_code == 200
    finally:
        for process, _ in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process, _ in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
