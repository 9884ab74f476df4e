"""Host side: the ``Policy`` (sandbox) and ``RunnerSpec`` for one plugin entry point.

Read access: the interpreter's standard library, the shared system libraries and the few
``/etc`` files name resolution and TLS need, this runtime's own modules and the SDK, the
plugin's own package, and every entry of site-packages *except* other plugin
distributions' packages. Nothing of the host project (settings, keys, database files) and
no ``/proc``. Network: when the manifest declares hosts, inet sockets may be created (the
egress shim needs them) but Landlock refuses every TCP ``connect`` and ``bind``: connections
come ready-made from the host's egress broker (``egress``), which checks host and port;
the runner's network namespace has no route anywhere. Limits come from the
``IMBI_PLUGIN_*`` settings through ``Limits``. Operator-granted directories
(``permissions.operator_path_settings``, checked by ``paths.granted_paths``) become
``Policy.data_paths``: read files and list, never write or execute.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import site
import sys
import sysconfig
from dataclasses import dataclass
from importlib import metadata

from imbi_plugin_sdk import Permissions

from .protocol import DEFAULT_MAX_FRAME
from .sandbox import Policy
from .supervisor import RunnerSpec

SYSTEM_READ = (
    "/usr/lib",
    "/usr/lib64",
    "/lib",
    "/lib64",
    "/usr/share/zoneinfo",
    "/usr/share/ca-certificates",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/ld.so.cache",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/host.conf",
    "/etc/localtime",
    "/etc/services",
    "/etc/protocols",
    "/dev/urandom",
)
ENTRY_POINT_GROUP = "imbi.plugins"


@dataclass(frozen=True)
class Limits:
    timeout: float = 10.0
    import_timeout: float = 10.0
    cpu_seconds: int = 60
    address_space: int = 2 * 1024**3
    open_files: int = 256
    processes: int = 32
    max_frame: int = DEFAULT_MAX_FRAME
    tmp_bytes: int = 256 * 1024**2  # the temp folder in total (0: RLIMIT_FSIZE per file only)


def _top_level(target: str) -> str:
    return target.partition(":")[0].split(".")[0]


def _locations(top: str) -> list[str]:
    try:
        spec = importlib.util.find_spec(top)  # a top-level find_spec executes nothing
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return list(spec.submodule_search_locations)
    return [spec.origin] if spec.origin else []


@functools.lru_cache(maxsize=1)
def _plugin_packages() -> frozenset[str]:
    """Top-level packages of every installed plugin distribution."""
    return frozenset(_top_level(ep.value) for ep in metadata.entry_points(group=ENTRY_POINT_GROUP))


@functools.lru_cache(maxsize=1)
def _runtime_paths() -> tuple[str, ...]:
    import imbi_plugin_sdk

    import plugins_core

    here = os.path.dirname(os.path.abspath(__file__))
    package = os.path.dirname(os.path.abspath(plugins_core.__file__))
    return (
        os.path.join(package, "__init__.py"),
        os.path.join(package, "sdk"),  # the deprecated import path, for plugins that use it
        here,
        os.path.dirname(os.path.abspath(imbi_plugin_sdk.__file__)),
        sysconfig.get_paths()["stdlib"],
        sysconfig.get_paths()["platstdlib"],
        os.path.realpath(sys.executable),
    )


def read_paths(own_packages: set[str]) -> tuple[str, ...]:
    paths = [*SYSTEM_READ, *_runtime_paths()]
    others = _plugin_packages() - own_packages
    for packages in dict.fromkeys(site.getsitepackages()):
        try:
            names = sorted(os.listdir(packages))
        except OSError:
            continue
        for name in names:
            stem = name.split(".")[0].split("-")[0]
            if name.endswith(".py") or "." not in name:
                stem = name.removesuffix(".py")
            if stem in others:
                continue
            paths.append(os.path.join(packages, name))
    for top in own_packages:
        paths.extend(_locations(top))
    return tuple(dict.fromkeys(paths))


@functools.lru_cache(maxsize=1)
def _default_sys_path() -> frozenset[str]:
    """What ``python -I`` puts on sys.path (the stdlib and site-packages)."""
    paths = {sysconfig.get_paths()[name] for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    return frozenset(os.path.normpath(p) for p in paths | set(site.getsitepackages()))


def runner_spec(
    *,
    key: tuple[str, ...],
    slug: str,
    entries: dict[str, str],
    permissions: Permissions,
    limits: Limits,
    env: str = "",
    data_paths: tuple[str, ...] = (),
) -> RunnerSpec:
    """``data_paths``: host directories the operator granted (read-only, ``paths``).
    ``env``: the distribution's own virtual environment
    (``plugins_core.distributions.environments``);
    its interpreter runs the runner and only it, the runtime and the system are readable."""
    own = {_top_level(target) for target in entries.values()}
    # The runner connects nothing itself (the egress broker hands it connected sockets), so
    # Landlock gets no TCP port rule: a plugin bypassing the shim is refused every connect.
    networked = bool(permissions.network_hosts or permissions.operator_host_settings)
    # A runtime-installed distribution (``env``) imports from its own environment only.
    roots = (
        ()
        if env
        else tuple(
            dict.fromkeys(
                os.path.dirname(location.rstrip("/"))
                for top in own
                for location in _locations(top)
                if os.path.dirname(location.rstrip("/")) not in _default_sys_path()
            )
        )
    )
    readable = (
        tuple(dict.fromkeys([*SYSTEM_READ, *_runtime_paths(), os.path.realpath(env)]))
        if env
        else read_paths(own)
    )
    policy = Policy(
        read_paths=readable,
        list_paths=roots,
        data_paths=data_paths,
        tcp_ports=(),
        network=networked,
        cpu_seconds=limits.cpu_seconds,
        address_space=limits.address_space,
        open_files=limits.open_files,
        processes=limits.processes,
        subprocesses=permissions.subprocesses,
        # no single file past the folder's total (the watchdog bounds the total)
        file_size=min(Policy.file_size, limits.tmp_bytes or Policy.file_size),
    )
    sites = (_env_site(env),) if env else tuple(dict.fromkeys(site.getsitepackages()))
    spec = RunnerSpec(
        key=key,
        sys_path=roots,
        site_dirs=sites,
        env=env,
        slug=slug,
        entries=entries,
        policy=policy,
        max_frame=limits.max_frame,
        start_timeout=limits.import_timeout,
        tmp_bytes=limits.tmp_bytes,
    )
    # The host's own interpreter, never the environment's ``bin/python``: its ``pyvenv.cfg``
    # (``home``) would decide where the standard library comes from before any sandbox.
    return spec


def _env_site(env: str) -> str:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return os.path.join(env, "lib", version, "site-packages")
