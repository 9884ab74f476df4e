"""imbi.testing.services: a server the harness started dies with the process that started it.

A child process starts a Redis through the harness, prints its pid and folder, and is then
SIGKILLed (no ``stop()``, no atexit): the reaper must stop Redis and remove the folder. The
reaper itself is no child of the test process. A normal ``stop()`` leaves nothing behind
either. (PostgreSQL is stopped by the same mechanism; Redis keeps the test cheap.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from imbi.testing.services import OWNER_FILE, PREFIX, Services, start_redis, sweep_stale

CHILD = """
import json, sys, tempfile, time
from pathlib import Path
from imbi.testing.services import Services, start_redis
services = Services(root=Path(tempfile.mkdtemp(prefix=sys.argv[1])))
start_redis(services)
print(json.dumps({"root": str(services.root), "redis": services.redis_pid}), flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(predicate: object, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_a_sigkilled_owner_leaves_no_server_and_no_folder() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, f"{PREFIX}reaper-"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        started = json.loads(child.stdout.readline())
        root, redis_pid = Path(started["root"]), int(started["redis"])
        owner = json.loads((root / OWNER_FILE).read_text())
        assert owner["pids"][0] == child.pid and alive(redis_pid)
        reaper = int(owner["pids"][1])
        assert alive(reaper)
        with open(f"/proc/{reaper}/stat") as handle:  # forked away: not the child's child
            assert int(handle.read().rsplit(")", 1)[1].split()[1]) != child.pid
    finally:
        child.kill()
        child.wait()
    assert wait_until(lambda: not alive(redis_pid)), "redis outlived its owner"
    assert wait_until(lambda: not root.exists()), f"{root} outlived its owner"
    assert wait_until(lambda: not alive(reaper))


def test_stop_stops_the_server_and_dismisses_the_reaper() -> None:
    services = Services(root=Path(tempfile.mkdtemp(prefix=f"{PREFIX}stop-")))
    start_redis(services)
    redis_pid = services.redis_pid
    reaper = json.loads((services.root / OWNER_FILE).read_text())["pids"][1]
    services.stop()
    assert wait_until(lambda: not alive(redis_pid))
    assert not services.root.exists()
    assert wait_until(lambda: not alive(reaper))


def test_sweep_stale_only_touches_folders_whose_owner_and_reaper_are_gone(
    tmp_path: Path,
) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    marker = tmp_path / "stopped"
    stale = Path(tempfile.mkdtemp(prefix=f"{PREFIX}stale-"))
    (stale / OWNER_FILE).write_text(
        json.dumps({"pids": [dead_pid, dead_pid], "stops": [["touch", str(marker)]]})
    )
    live = Path(tempfile.mkdtemp(prefix=f"{PREFIX}live-"))
    (live / OWNER_FILE).write_text(
        json.dumps({"pids": [os.getpid(), dead_pid], "stops": [["touch", str(tmp_path / "x")]]})
    )
    foreign = Path(tempfile.mkdtemp(prefix=f"{PREFIX}foreign-"))  # no owner file: not ours
    try:
        removed = sweep_stale()
        assert stale in removed and marker.exists() and not stale.exists()
        assert live.exists() and foreign.exists() and not (tmp_path / "x").exists()
    finally:
        for folder in (live, foreign):
            for path in folder.iterdir():
                path.unlink()
            folder.rmdir()
