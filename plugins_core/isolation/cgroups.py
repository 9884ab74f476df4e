"""A cgroup per runner: cgroup v2 where this process owns a delegated subtree, else v1 pids.

cgroup v2 (``capabilities.probe().cgroup_v2``, the process's own cgroup folder, delegated
by systemd ``Delegate=yes`` or a container with a writable cgroup namespace): the first
runner of a process prepares the subtree once. cgroup v2 lets a folder either hold
processes or hand controllers to its children, so the processes of the delegated folder
move into a leaf ``imbi-host``, the folder enables ``+pids +memory +cpu`` for its children,
and ``imbi-runners`` does the same for the runners' folders. Each runner then gets
``imbi-runners/<id>`` with ``pids.max``, ``memory.max`` (and ``memory.swap.max`` 0) and
``cpu.max`` (one CPU), is killed as a whole with ``cgroup.kill`` and its folder removed.

cgroup v1 (root, a writable ``/sys/fs/cgroup/pids``): ``pids.max`` only, as before.

Where neither exists a runner has no cgroup: the unprivileged sandbox keeps it one process
(``sandbox``: seccomp refuses ``fork``), bounded by its rlimits.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass

from .capabilities import PIDS_V1, V2_CONTROLLERS, HostCapabilities

logger = logging.getLogger("imbi.plugins.isolation")

__all__ = ["RunnerCgroup", "make", "prepare_v2"]

_lock = threading.Lock()
_prepared: dict[tuple[int, str], str] = {}
_swept: set[str] = set()


@dataclass(frozen=True)
class RunnerCgroup:
    """One runner's cgroup folder and its hierarchy's version."""

    path: str
    version: int

    def kill(self) -> None:
        """Kill every process in it (v2: ``cgroup.kill``) and remove the folder."""
        if self.version == 2:
            try:
                _write(os.path.join(self.path, "cgroup.kill"), "1")
            except FileNotFoundError:
                return
            except OSError as exc:
                logger.warning("cgroup.kill of %s failed (%s)", self.path, exc.strerror)
        for _ in range(50):
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.01)  # the last processes are still exiting
        logger.warning("runner cgroup %s not removed", self.path)


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def _enabled(folder: str) -> set[str]:
    with open(os.path.join(folder, "cgroup.subtree_control")) as handle:
        return {name.lstrip("+") for name in handle.read().split()}


def _enable(folder: str) -> None:
    if not set(V2_CONTROLLERS) <= _enabled(folder):
        _write(
            os.path.join(folder, "cgroup.subtree_control"),
            " ".join(f"+{name}" for name in V2_CONTROLLERS),
        )


def _sweep(base: str) -> None:
    """Remove empty runner cgroups a killed host left behind (older than a minute)."""
    if base in _swept:
        return
    _swept.add(base)
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        path = os.path.join(base, name)
        try:
            if os.path.isdir(path) and time.time() - os.stat(path).st_mtime > 60:
                os.rmdir(path)  # refused while any process is in it
        except OSError:
            continue


def prepare_v2(delegated: str) -> str:
    """The ``imbi-runners`` folder under ``delegated``, ready for runner cgroups (once per
    process); raises ``OSError`` when the subtree cannot be arranged."""
    key = (os.getpid(), delegated)
    with _lock:
        done = _prepared.get(key)
        if done:
            return done
        if not set(V2_CONTROLLERS) <= _enabled(delegated):
            # no internal processes: this folder's processes move to a leaf first
            leaf = os.path.join(delegated, "imbi-host")
            os.makedirs(leaf, exist_ok=True)
            with open(os.path.join(delegated, "cgroup.procs")) as handle:
                pids = handle.read().split()
            for pid in pids:
                try:
                    _write(os.path.join(leaf, "cgroup.procs"), pid)
                except ProcessLookupError:
                    continue
            _enable(delegated)
        runners = os.path.join(delegated, "imbi-runners")
        os.makedirs(runners, exist_ok=True)
        _enable(runners)
        _sweep(runners)
        _prepared[key] = runners
        return runners


def make(caps: HostCapabilities, *, processes: int, memory: int) -> RunnerCgroup | None:
    """A fresh cgroup for one runner, or ``None`` where the host offers none."""
    if caps.cgroup_v2:
        try:
            base = prepare_v2(caps.cgroup_v2)
            path = os.path.join(base, uuid.uuid4().hex[:16])
            os.mkdir(path)
        except OSError as exc:
            logger.warning("no cgroup v2 for plugin runners (%s)", exc)
        else:
            limits = {
                "pids.max": str(processes),
                "memory.max": str(memory),
                "memory.swap.max": "0",
                "cpu.max": "100000 100000",  # one CPU
            }
            try:
                for name, value in limits.items():
                    if name == "memory.swap.max" and not os.path.exists(os.path.join(path, name)):
                        continue  # no swap accounting on this kernel
                    _write(os.path.join(path, name), value)
            except OSError as exc:
                logger.warning("runner cgroup v2 limits not set (%s)", exc)
                RunnerCgroup(path, 2).kill()
                return None
            return RunnerCgroup(path, 2)
    if caps.cgroup_v1_pids:
        base = os.path.join(PIDS_V1, "imbi-runners")
        path = os.path.join(base, uuid.uuid4().hex[:16])
        with _lock:
            _sweep(base)
        try:
            os.makedirs(path, exist_ok=False)
            _write(os.path.join(path, "pids.max"), str(processes))
        except OSError as exc:
            logger.warning("no pids cgroup for plugin runners (%s)", exc)
            return None
        return RunnerCgroup(path, 1)
    return None
