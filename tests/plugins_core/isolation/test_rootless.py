"""The sandbox without root: hostile behaviours run by a web process that is uid 10001 with
every capability dropped and ``no_new_privs`` (as in the shipped image or a Kubernetes
"restricted" pod), where PID and network namespaces cannot be created.

The interpreter: the project's own (under ``/root``, mode 0700) cannot be executed by
another uid, so the suite builds a throwaway virtual environment from Debian's
``/usr/bin/python3.11`` in a temp folder (``venv --without-pip``, no network, under a
second) and copies into its site-packages only what a runner loads: the SDK,
``plugins_core.isolation`` and the hostile plugin. Nothing is installed on the machine and
nothing of the project's environment is made readable to that uid. The driver
(``rootless/driver.py``) plays the web process: it starts runners through the supervisor,
runs each attack as a call and measures the same attempts from an unsandboxed process of
the same uid (the controls), so a refusal is the sandbox's, not the file permissions'.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

UID = 10001
SECRET = "IMBI-ROOTLESS-HOST-SECRET-5512"
REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent / "rootless"
PYTHON = "/usr/bin/python3.11"
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(SETPRIV) or not os.path.exists(PYTHON),
    reason="needs root to switch to an unprivileged uid, setpriv and /usr/bin/python3.11",
)


def _address(url: str, default_port: int) -> list[Any]:
    parts = urlsplit(url)
    return [parts.hostname or "127.0.0.1", parts.port or default_port]


def _uid_processes() -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == UID:
                    found.append(int(name))
            except OSError:
                continue
    return found


class UnixServer:
    """A world-connectable pathname socket: a stand-in for a database's or a container
    runtime's socket on the host's file system. Counts the connections it accepts."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        os.chmod(path, 0o777)  # noqa: S103 (a socket any uid may connect to, on purpose)
        self.sock.listen(16)
        self.accepted = 0
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()


@pytest.fixture(scope="module")
def report() -> Iterator[dict[str, Any]]:
    base = Path(tempfile.mkdtemp(prefix="imbi-rootless-"))
    server: UnixServer | None = None
    try:
        base.chmod(0o755)
        venv = base / "venv"
        subprocess.run([PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True)
        site = venv / "lib" / "python3.11" / "site-packages"
        skip = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(REPO / "sdk" / "imbi_plugin_sdk", site / "imbi_plugin_sdk", ignore=skip)
        (site / "plugins_core").mkdir()
        shutil.copy(REPO / "plugins_core" / "__init__.py", site / "plugins_core")
        shutil.copytree(
            REPO / "plugins_core" / "isolation", site / "plugins_core" / "isolation", ignore=skip
        )
        for name in ("imbi_rootless_hostile.py", "driver.py"):
            shutil.copy(HERE / name, site / name)
        subprocess.run(["chmod", "-R", "a+rX", str(base)], check=True)
        home = base / "home"  # the web process's own folder (its TMPDIR)
        home.mkdir(mode=0o700)
        secret_file = home / "host-secret.txt"
        secret_file.write_text(SECRET)
        for path in (home, secret_file):
            os.chown(path, UID, UID)
        secret_file.chmod(0o600)
        server = UnixServer(str(base / "platform.sock"))
        target = {
            "pg": _address(os.environ["DATABASE_URL"], 5432),
            "redis": _address(os.environ["REDIS_URL"], 6379),
            "unix": str(base / "platform.sock"),
            "home": str(home),
            "secret_file": str(secret_file),
        }
        command = [
            SETPRIV,
            f"--reuid={UID}",
            f"--regid={UID}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            str(venv / "bin" / "python"),
            "-I",
            str(site / "driver.py"),
            json.dumps(target),
        ]
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "TMPDIR": str(home),
            "IMBI_ROOTLESS_SECRET": SECRET,  # what a plugin would steal from the web process
        }
        started = time.monotonic()
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=300, env=env, cwd=str(home)
        )
        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["seconds"] = time.monotonic() - started
        result["stderr"] = done.stderr
        result["unix_accepted"] = server.accepted
        result["left"] = _uid_processes()
        result["escaped"] = os.path.exists("/tmp/imbi-rootless-escape.txt")
        yield result
    finally:
        if server is not None:
            server.sock.close()
        shutil.rmtree(base, ignore_errors=True)


def attack(report: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = report["attacks"][name]
    assert found["healthy_after"], f"a healthy runner stopped answering after {name}"
    assert found["left_behind"] == [], f"{name} left processes behind"
    return found


def test_the_web_process_is_unprivileged_and_cannot_create_namespaces(
    report: dict[str, Any],
) -> None:
    assert report["uid"] == UID
    status = report["proc_status"]
    assert int(status["CapEff"], 16) == int(status["CapPrm"], 16) == 0
    assert int(status["CapBnd"], 16) == 0
    assert status["NoNewPrivs"] == "1"
    caps = report["capabilities"]
    assert not caps["namespaces"], "this test must run without namespaces"
    assert caps["landlock_abi"] >= 6 and caps["seccomp"]
    assert report["sandbox"]["network_namespace"] is False
    assert report["dumpable"] == 0  # PR_SET_DUMPABLE 0 on the web process
    assert report["alive"]
    assert not report["left"], f"uid {UID} processes left behind: {report['left']}"
    assert SECRET not in json.dumps(report["attacks"]) and SECRET not in report["stderr"]


def test_the_controls_show_what_the_sandbox_refuses(report: dict[str, Any]) -> None:
    """The same uid without the sandbox reaches the databases, the socket and the file:
    every refusal below is the sandbox's. Even unsandboxed, the web process's environment
    is unreadable: it is not dumpable."""
    assert report["control"] == {
        "POSTGRES_TCP": "ALLOWED",
        "REDIS_TCP": "ALLOWED",
        "UNIX": "ALLOWED",
        "READ_HOST_SECRET": "ALLOWED",
        "ENVIRON": "PermissionError",
        "WRITE_TMP": "ALLOWED",
    }
    assert report["unix_accepted"] == 1  # the control's connection only


def test_fork_bomb_is_refused_outright(report: dict[str, Any]) -> None:
    found = attack(report, "fork_bomb")
    assert found["keys"] == ["FORKED_0", "REFUSED_300", "POSIX_SPAWN_REFUSED_EPERM"]


def test_thread_bomb_is_bounded_by_the_address_space_and_the_runner_replaced(
    report: dict[str, Any],
) -> None:
    found = attack(report, "thread_bomb")
    threads = int(found["keys"][0].split("_")[1])
    assert threads < 5000 and found["keys"][1] == "STOPPED_RuntimeError"
    assert found["recycle"]  # its threads outlived the call: never back in the pool


def test_a_4_gib_allocation_fails_in_the_runner(report: dict[str, Any]) -> None:
    assert attack(report, "memory")["error"] == "plugin_failed"


def test_the_web_process_cannot_be_read_signalled_or_traced(report: dict[str, Any]) -> None:
    assert attack(report, "web_process")["keys"] == [
        "ENVIRON_REFUSED_EACCES",  # Landlock: no /proc
        "MEM_REFUSED_EACCES",
        "KILL_REFUSED_EPERM",  # seccomp: signals to itself only (and Landlock's scope)
        "KILL_ALL_REFUSED_EPERM",
        "PIDFD_REFUSED_EPERM",
        "PTRACE_REFUSED_EPERM",
        "VM_READV_REFUSED_EPERM",
    ]


def test_no_socket_of_its_own_reaches_the_platform(report: dict[str, Any]) -> None:
    assert attack(report, "sockets")["keys"] == [
        "RAW_REFUSED_EPERM",
        "PACKET_REFUSED_EPERM",
        "NETLINK_REFUSED_EPERM",
        "SCTP_REFUSED_EPERM",
        "MPTCP_REFUSED_EPERM",
        "POSTGRES_TCP_REFUSED_EPERM",  # seccomp: no inet socket without declared hosts
        "REDIS_TCP_REFUSED_EPERM",
        "REDIS_UDP_REFUSED_EPERM",
        "UNIX_REFUSED_EPERM",  # seccomp: no new Unix socket
    ]
    networked = attack(report, "sockets_networked")
    assert networked.get("keys") == [
        "RAW_REFUSED_EPERM",
        "PACKET_REFUSED_EPERM",
        "NETLINK_REFUSED_EPERM",
        "SCTP_REFUSED_EPERM",  # TCP streams only: Landlock's port rules cover TCP alone
        "MPTCP_REFUSED_EPERM",
        "POSTGRES_TCP_REFUSED_EACCES",  # Landlock: no TCP connect right
        "REDIS_TCP_REFUSED_EACCES",
        "REDIS_UDP_REFUSED_EPERM",  # no datagram socket outside a network namespace
        "UNIX_REFUSED_EPERM",
    ], networked


def test_it_writes_only_in_its_temp_folder(report: dict[str, Any]) -> None:
    files = attack(report, "files")
    assert files.get("keys") == [
        "WRITE_OWN_TMP_ALLOWED",
        "WRITE_TMP_REFUSED_EACCES",
        "WRITE_HOME_REFUSED_EACCES",
        "READ_HOST_SECRET_REFUSED_EACCES",
        "LIST_ROOT_REFUSED_EACCES",
    ], files
    assert not report["escaped"]
