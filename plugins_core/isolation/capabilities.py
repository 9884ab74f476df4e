"""What this host can enforce on a runner, probed once per process (Linux, x86_64).

``probe()`` answers, cached per process id (a forked worker probes again):

* ``landlock_abi``: the kernel's Landlock ABI (0: none). ABI 1 confines files, 4 adds TCP
  ``connect``/``bind``, 6 scopes signals and abstract Unix sockets to the sandbox;
* ``seccomp``: whether this process may install a seccomp filter (``PR_GET_SECCOMP``);
* ``no_new_privs``: whether the kernel has ``PR_SET_NO_NEW_PRIVS``;
* ``namespaces``: whether a runner's warden can create a PID and a network namespace
  (root or ``CAP_SYS_ADMIN``, and a seccomp profile that lets ``unshare`` through: Docker's,
  CRI-O's and Kubernetes' ``RuntimeDefault`` do not), tried in a throwaway interpreter;
* ``cgroup_version`` (0, 1 or 2), ``cgroup_v1_pids`` (a writable v1 ``pids`` hierarchy)
  and ``cgroup_v2`` (the cgroup v2 folder this process owns and may delegate to runners, with
  the ``pids``, ``memory`` and ``cpu`` controllers and ``cgroup.kill``; "" when none).

``refusal(network=..., subprocesses=...)`` is the one sentence every status surface shows
(``check --deploy``, ``/healthz``, ``plugin list``, the admin, the API) when a runner for
such a plugin cannot be sandboxed here, or "" when it can. The unprivileged sandbox
(Landlock, seccomp after ``no_new_privs``, rlimits, the egress broker) needs no root;
namespaces and cgroups are an extra layer where available, required only to bound the
process tree of a plugin that declares ``permissions.subprocesses``.

Only the standard library is imported here (no Django): a runner may import it too.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "CANNOT_RUN_HERE",
    "HostCapabilities",
    "entry_refusal",
    "harden_host",
    "log_summary",
    "probe",
    "refusal",
    "reset",
    "status_label",
    "status_value",
    "summary",
]

CANNOT_RUN_HERE = "cannot_run_here"  # the status every surface shows instead of "loaded"

logger = logging.getLogger("imbi.plugins.isolation")

PR_GET_SECCOMP, PR_GET_NO_NEW_PRIVS, PR_SET_DUMPABLE = 21, 39, 4
SYS_LANDLOCK_CREATE_RULESET = 444
PIDS_V1 = "/sys/fs/cgroup/pids"
V2_CONTROLLERS = ("pids", "memory", "cpu")
# An operator (or a test) may turn the namespace layer off to run the unprivileged sandbox
# alone; "auto" (the default) uses namespaces where the host allows them.
NAMESPACES_ENV = "IMBI_PLUGIN_NAMESPACES"

_NAMESPACE_PROBE = (
    "import ctypes, os, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "if libc.unshare(0x20000000 | 0x40000000) != 0:\n"
    "    sys.stdout.write(os.strerror(ctypes.get_errno()))\n"
    "    sys.exit(1)\n"
)


@dataclass(frozen=True)
class HostCapabilities:
    """What the host can enforce; see the module docstring."""

    uid: int = 0
    landlock_abi: int = 0
    seccomp: bool = False
    no_new_privs: bool = False
    namespaces: bool = False
    namespaces_reason: str = ""
    cgroup_version: int = 0
    cgroup_v1_pids: bool = False
    cgroup_v2: str = ""
    cgroup_v2_reason: str = ""

    def can_bound_process_tree(self) -> bool:
        """Whether a runner's whole process tree can be limited and killed here."""
        return self.namespaces or (bool(self.cgroup_v2) and self.landlock_abi >= 6)

    def refusal(self, *, network: bool = False, subprocesses: bool = False) -> str:
        """Why a runner with these needs cannot be sandboxed here ("" when it can)."""
        if self.landlock_abi < 1:
            return "Landlock is not available in this kernel (Linux 5.13+ with landlock in lsm=)"
        if not self.no_new_privs:
            return "the kernel lacks no_new_privs"
        if not self.seccomp:
            return "seccomp filters are not available to this process"
        if network and self.landlock_abi < 4:
            return f"Landlock ABI {self.landlock_abi} cannot restrict TCP connect (needs 4)"
        if subprocesses and not self.can_bound_process_tree():
            return (
                "the plugin starts subprocesses, and this host can bound a process tree "
                "neither with PID namespaces nor with a delegated cgroup v2 subtree "
                "(pids, memory, cpu, cgroup.kill) and Landlock ABI 6"
            )
        return ""

    def layers(self) -> dict[str, Any]:
        """For ``/healthz`` and the docs: each layer and whether it is active here."""
        return asdict(self)


_lock = threading.Lock()
_cache: dict[int, HostCapabilities] = {}
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _prctl(option: int) -> int:
    result = int(_libc.prctl(option, 0, 0, 0, 0))
    return -ctypes.get_errno() if result < 0 else result


def _landlock_abi() -> int:
    result = int(_libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), 1))
    return max(result, 0)


def _namespaces() -> tuple[bool, str]:
    chosen = os.environ.get("IMBI_PLUGIN_NAMESPACES", "auto").strip().lower()
    if chosen in ("off", "0", "no", "false"):
        return False, f"turned off ({NAMESPACES_ENV})"
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _NAMESPACE_PROBE],
            capture_output=True,
            timeout=10,
            check=False,
            env={"PATH": "/usr/bin:/bin"},
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"probe failed ({type(exc).__name__})"
    if done.returncode == 0:
        return True, ""
    text = done.stdout.decode(errors="replace").strip()[:200] or f"exit {done.returncode}"
    return False, f"cannot create PID and network namespaces: {text}"


def _mounts(root: str) -> dict[str, str]:
    """cgroup mount points under ``root`` -> file system type."""
    found: dict[str, str] = {}
    try:
        with open("/proc/self/mounts") as mounts:
            for line in mounts:
                fields = line.split()
                if (
                    len(fields) >= 3
                    and fields[2] in ("cgroup", "cgroup2")
                    and fields[1].startswith(root)
                ):
                    found[fields[1]] = fields[2]
    except OSError:
        pass
    return found


def _own_v2_path(proc_cgroup: str = "/proc/self/cgroup") -> str | None:
    try:
        with open(proc_cgroup) as lines:
            for line in lines:
                number, _, rest = line.rstrip("\n").partition(":")
                controllers, _, path = rest.partition(":")
                if number == "0" and controllers == "":
                    return path
    except OSError:
        return None
    return None


def delegated_v2(mount: str, own: str) -> tuple[str, str]:
    """The cgroup v2 folder this process may create runner cgroups beneath, or a reason.

    The folder is the process's own cgroup; when that is ``imbi-host`` (the leaf the
    supervisor moved this node's processes into, ``cgroups``) its parent."""
    path = os.path.normpath(os.path.join(mount, own.lstrip("/")))
    if os.path.basename(path) == "imbi-host":
        path = os.path.dirname(path)
    try:
        with open(os.path.join(path, "cgroup.controllers")) as handle:
            available = set(handle.read().split())
    except OSError as exc:
        return "", f"cgroup v2 folder unreadable ({exc.strerror})"
    missing = [c for c in V2_CONTROLLERS if c not in available]
    if missing:
        return "", f"cgroup v2 controllers not delegated: {', '.join(missing)}"
    if not os.path.exists(os.path.join(path, "cgroup.kill")):
        return "", "cgroup.kill is missing (Linux 5.14+)"
    for name in ("", "cgroup.procs", "cgroup.subtree_control"):
        if not os.access(os.path.join(path, name) if name else path, os.W_OK):
            return "", f"this process's cgroup v2 folder is not writable ({name or 'folder'})"
    return path, ""


def _cgroups() -> tuple[int, bool, str, str]:
    mounts = _mounts("/sys/fs/cgroup")
    version = 2 if mounts.get("/sys/fs/cgroup") == "cgroup2" else (1 if mounts else 0)
    v1_pids = mounts.get(PIDS_V1) == "cgroup" and os.access(PIDS_V1, os.W_OK)
    v2_mount = next((m for m, kind in mounts.items() if kind == "cgroup2"), "")
    own = _own_v2_path()
    if not v2_mount or own is None:
        return version, v1_pids, "", "no cgroup v2 hierarchy"
    path, reason = delegated_v2(v2_mount, own)
    return version, v1_pids, path, reason


def _probe() -> HostCapabilities:
    seccomp = _prctl(PR_GET_SECCOMP)
    namespaces, ns_reason = _namespaces()
    version, v1_pids, v2, v2_reason = _cgroups()
    return HostCapabilities(
        uid=os.geteuid(),
        landlock_abi=_landlock_abi(),
        # 0: no filter yet, 2: filtered already (a container's profile): both may add one
        seccomp=seccomp in (0, 2),
        no_new_privs=_prctl(PR_GET_NO_NEW_PRIVS) >= 0,
        namespaces=namespaces,
        namespaces_reason=ns_reason,
        cgroup_version=version,
        cgroup_v1_pids=v1_pids,
        cgroup_v2=v2,
        cgroup_v2_reason=v2_reason,
    )


def probe() -> HostCapabilities:
    """This process's host capabilities (probed once per process, about 20 ms)."""
    pid = os.getpid()
    with _lock:
        found = _cache.get(pid)
        if found is None:
            _cache.clear()
            found = _cache[pid] = _probe()
        return found


def reset(value: HostCapabilities | None = None) -> None:
    """Forget the probe (or pin ``value``, for tests)."""
    with _lock:
        _cache.clear()
        if value is not None:
            _cache[os.getpid()] = value


def refusal(*, network: bool = False, subprocesses: bool = False) -> str:
    return probe().refusal(network=network, subprocesses=subprocesses)


def needs(manifest: Any) -> dict[str, bool]:
    """What a runner for ``manifest`` (an SDK ``PluginManifest``) asks of the host."""
    permissions = manifest.permissions
    return {
        "network": bool(permissions.network_hosts or permissions.operator_host_settings),
        "subprocesses": bool(getattr(permissions, "subprocesses", False)),
    }


def entry_refusal(entry: Any, *, isolated: bool | None = None) -> str:
    """Why the runners of a registry entry cannot be sandboxed here ("" when they can, or
    when it runs in-process). ``isolated`` overrides the entry's own flag (an installed
    plugin an admin chose to isolate). Not imported yet (no manifest): the host's base
    sandbox is what counts."""
    if not (getattr(entry, "isolated", False) if isolated is None else isolated):
        return ""
    manifest = getattr(entry, "manifest", None)
    caps = probe()
    return caps.refusal(**needs(manifest)) if manifest is not None else caps.refusal()


def status_value(entry: Any) -> str:
    """The entry's status for the API and ``plugin list``: ``cannot_run_here`` or its own."""
    return CANNOT_RUN_HERE if entry_refusal(entry) else str(entry.status.value)


def status_label(entry: Any) -> str:
    """The entry's status in words: "cannot run here: <reason>" or its own label."""
    reason = entry_refusal(entry)
    return f"cannot run here: {reason}" if reason else str(entry.status.label)


def summary(caps: HostCapabilities | None = None) -> str:
    """One line: what this host enforces on runners."""
    caps = caps or probe()
    namespaces = "yes" if caps.namespaces else f"no ({caps.namespaces_reason})"
    v2 = caps.cgroup_v2 or f"no ({caps.cgroup_v2_reason})"
    return (
        f"plugin sandbox on this host: uid {caps.uid}, Landlock ABI {caps.landlock_abi}, "
        f"seccomp {'yes' if caps.seccomp else 'no'}, namespaces {namespaces}, "
        f"cgroup v{caps.cgroup_version or '-'}, pids v1 {'yes' if caps.cgroup_v1_pids else 'no'}, "
        f"delegated cgroup v2 {v2}"
    )


def log_summary() -> None:
    """Probe now (start-up) and log the result once per process at DEBUG; a host that
    cannot sandbox any runner is a WARNING (every untrusted plugin is refused)."""
    caps = probe()
    base = caps.refusal()
    if base:
        logger.warning("%s; untrusted plugins cannot run here: %s", summary(caps), base)
    else:
        logger.debug("%s", summary(caps))


def harden_host() -> None:
    """``PR_SET_DUMPABLE 0`` on this (web or worker) process: a runner under the same uid
    can then neither ptrace it nor read its ``/proc/<pid>/mem``/``environ`` (reset by every
    ``exec``, so each process that starts runners calls this). Idempotent."""
    if _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        if err != errno.EINVAL:
            raise OSError(err, os.strerror(err))
