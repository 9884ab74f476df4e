"""What a runner holds, seen from the host: threads, CPU time, resident memory, temp folder.

The runner's own view cannot be trusted (a thread started with ``_thread`` or from C is
invisible to ``threading``), and the sandbox gives it no ``/proc``; the host reads
``/proc/<pid>/stat`` of the runner's processes (the warden and its child) instead:

* ``retire_reason`` — after each call (``Pool.release``): a runner whose thread count grew
  past its count after the handshake (a thread outlived the call), whose resident memory
  is above ``max_rss``, or whose temp folder holds more than ``max_tmp`` bytes is retired
  (killed), never pooled;
* ``spun_while_idle`` — a pooled runner that used CPU time while it had no call (a signal
  handler or a thread the count missed) is killed: by the watchdog, and before reuse
  (``Pool.acquire``);
* ``Watchdog`` — one thread per process that, every ``INTERVAL`` seconds, measures every
  live runner's temp folder and kills a runner past its total (``RunnerSpec.tmp_bytes``;
  ``RLIMIT_FSIZE`` bounds one file only; the call answers 502 ``plugin_crashed`` naming
  the limit), and kills an idle runner that spins.

Temp folders are named ``runner-<host pid>-…``: they are removed when their runner ends,
every live runner is killed (and its folder and cgroup removed) when the host process
exits (``atexit``), and the folders of host processes that no longer exist (killed with
SIGKILL) are removed when the next process starts its first runner (``sweep``).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("imbi.plugins.isolation")

INTERVAL = 0.2  # seconds between two measurements of the temp folders
IDLE_CPU = 0.1  # CPU seconds an idle runner may use (page faults, a late GC) before it goes
MAX_ENTRIES = 10_000  # files a temp folder may hold; more count as over any limit
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Usage:
    threads: int = 0
    cpu: float = 0.0  # seconds, user + system
    rss: int = 0  # bytes


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(item) for item in handle.read().split()]
    except (OSError, ValueError):
        return []


def processes(runner: Any) -> tuple[int, ...]:
    """The runner's host pids: the process the host started and its direct children."""
    pid = int(runner.proc.pid)
    return (pid, *_children(pid))


def usage(pids: tuple[int, ...]) -> Usage:
    threads, ticks, pages = 0, 0, 0
    for pid in pids:
        fields = _stat(pid)
        if fields is None or fields[0] == "Z":
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
        threads += int(fields[17])
        pages += int(fields[21])
    return Usage(threads, ticks / _TICKS, pages * _PAGE)


def tmp_bytes(path: str) -> int:
    """Bytes the folder's files take on disk (``MAX_ENTRIES`` files or more: no limit
    passes); symlinks are not followed."""
    total, entries = 0, 0
    stack = [path]
    while stack:
        try:
            scan = os.scandir(stack.pop())
        except OSError:
            continue
        with scan:
            for entry in scan:
                entries += 1
                if entries >= MAX_ENTRIES:
                    return 1 << 62
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += info.st_blocks * 512
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
    return total


def baseline(runner: Any) -> None:
    """Record what a runner holds once it has said hello."""
    runner.pids = processes(runner)
    runner.baseline = usage(runner.pids)
    runner.idle_cpu = runner.baseline.cpu


def retire_reason(runner: Any, *, max_rss: int, max_tmp: int) -> str:
    """Why a runner that just finished a call must not go back to the pool ("" if none)."""
    pids = getattr(runner, "pids", None) or processes(runner)
    now = usage(pids)
    runner.idle_cpu = now.cpu
    start: Usage = getattr(runner, "baseline", Usage())
    if start.threads and now.threads > start.threads:
        return f"{now.threads - start.threads} thread(s) outlived the call"
    if max_rss and now.rss > max_rss:
        return f"resident memory {now.rss // 1024**2} MiB is over {max_rss // 1024**2} MiB"
    if max_tmp:
        used = tmp_bytes(runner.tmp_dir)
        if used > max_tmp:
            return f"its temp folder holds {used // 1024**2} MiB (over {max_tmp // 1024**2} MiB)"
    return ""


def spun_while_idle(runner: Any) -> bool:
    """Whether an idle runner used CPU time since its last call ended."""
    pids = getattr(runner, "pids", None)
    if not pids:
        return False
    return usage(pids).cpu - float(getattr(runner, "idle_cpu", 0.0)) > IDLE_CPU


# --------------------------------------------------------------------------- live runners


class Watchdog:
    """Kills a runner whose temp folder grows past its total; kills every runner at exit."""

    def __init__(self) -> None:
        self.runners: weakref.WeakSet[Any] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._pid = 0

    def track(self, runner: Any) -> None:
        with self._lock:
            if self._pid != os.getpid():  # first runner of this process (or of a fork)
                self._pid = os.getpid()
                self.runners = weakref.WeakSet()
                sweep(os.path.dirname(runner.tmp_dir))
                atexit.register(self.close)
                threading.Thread(
                    target=self._loop, name="imbi-runner-watchdog", daemon=True
                ).start()
            self.runners.add(runner)

    def _live(self) -> list[Any]:
        with self._lock:
            return [r for r in list(self.runners) if not r.dead]

    def _loop(self) -> None:
        pid = os.getpid()
        while self._pid == pid:
            time.sleep(INTERVAL)
            for runner in self._live():
                if not getattr(runner, "busy", True) and spun_while_idle(runner):
                    logger.warning(
                        "plugin %s: idle runner killed, it used CPU time without a call",
                        runner.spec.slug,
                    )
                    with contextlib.suppress(OSError):
                        runner.proc.kill()
                    continue
                limit = int(getattr(runner.spec, "tmp_bytes", 0) or 0)
                if not limit or runner.over_quota:
                    continue
                used = tmp_bytes(runner.tmp_dir)
                if used > limit and not runner.dead:
                    runner.over_quota = limit
                    logger.warning(
                        "plugin %s: runner killed, its temp folder holds %d MiB (limit %d MiB)",
                        runner.spec.slug,
                        used // 1024**2,
                        limit // 1024**2,
                    )
                    with contextlib.suppress(OSError):
                        runner.proc.kill()  # its runner dies with it (PR_SET_PDEATHSIG)

    def close(self) -> None:
        """At exit: every live runner killed, its temp folder and cgroup removed."""
        if self._pid != os.getpid():
            return
        for runner in self._live():
            with contextlib.suppress(Exception):
                runner.kill()


watchdog = Watchdog()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(base: str) -> int:
    """Remove the temp folders of runners whose host process no longer exists."""
    removed = 0
    try:
        names = os.listdir(base)
    except OSError:
        return 0
    for name in names:
        parts = name.split("-")
        if len(parts) < 3 or parts[0] != "runner" or not parts[1].isdigit():
            continue
        if int(parts[1]) == os.getpid() or _alive(int(parts[1])):
            continue
        shutil.rmtree(os.path.join(base, name), ignore_errors=True)
        removed += 1
    return removed
