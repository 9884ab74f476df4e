"""``imbi-plugin check --isolated``: a plugin's calls under the platform's sandbox policy.

``confine(manifest, root)`` is called in a forked child of the check process, after the
plugin was imported and before any of its methods runs. It applies what the platform applies
to an isolated runner, with the standard library only:

* **declared hosts only**: ``socket.getaddrinfo`` and ``socket.socket.connect``/``connect_ex``
  refuse any host and port that ``permissions.network_hosts`` does not match (``host``,
  ``host:port``, ``*.suffix[:port]``; no port means 443, as on the platform's egress broker),
  raising ``PermissionError`` naming ``host:port``; every refusal is remembered in
  ``refused`` so the check can say which host was wrongly declared;
* the kernel sandbox (``sandbox.apply``, a copy of the platform's): resource limits,
  ``PR_SET_NO_NEW_PRIVS``, Landlock (read-only access to the interpreter, its packages, the
  plugin and the system files TLS needs; write only to a private temp folder; TCP ``connect``
  only to the declared ports), the seccomp filter (no inet sockets at all when no host is
  declared).

Where the kernel cannot sandbox (not Linux x86_64, Landlock off), ``confine`` returns the
reason and the host check still applies; ``check`` reports it as a warning.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from .manifest import PluginManifest

__all__ = ["confine", "host_allowed", "refused"]

refused: list[str] = []  # "host:port" the plugin tried to reach without declaring it

SYSTEM_READ = (
    "/usr",
    "/lib",
    "/lib64",
    "/bin",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/ld.so.cache",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/host.conf",
    "/etc/localtime",
    "/etc/services",
    "/etc/protocols",
    "/dev/null",
    "/dev/urandom",
)


def _split(pattern: str) -> tuple[str, int]:
    host, sep, port = pattern.rpartition(":")
    if sep and port.isdigit() and "]" not in port:
        return host.strip("[]").lower().rstrip("."), int(port)
    return pattern.strip("[]").lower().rstrip("."), 443


def host_allowed(host: str, port: int, patterns: tuple[str, ...] | list[str]) -> bool:
    """Whether ``host:port`` matches one of the declared ``network_hosts`` patterns."""
    name = str(host).strip("[]").lower().rstrip(".")
    try:
        ipaddress.ip_address(name)
        literal = True
    except ValueError:
        literal = False
    for pattern in patterns:
        want, want_port = _split(pattern)
        if want_port != port:
            continue
        if want.startswith("*."):
            if not literal and name.endswith(want[1:]) and name != want[2:]:
                return True
        elif name == want:
            return True
    return False


def _port(value: Any) -> int:
    if value is None:
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return socket.getservbyname(str(value), "tcp")
        except OSError:
            return 0


def _refuse(host: str, port: int, patterns: tuple[str, ...]) -> PermissionError:
    where = f"{host}:{port}"
    refused.append(where)
    declared = ", ".join(patterns) or "none"
    return PermissionError(
        errno.EACCES, f"{where} is not a declared network host (network_hosts: {declared})"
    )


def _guard(patterns: tuple[str, ...]) -> None:
    resolved: set[str] = set()  # addresses of names the plugin may reach
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host is None:
            return real_getaddrinfo(host, port, *args, **kwargs)
        name = host.decode() if isinstance(host, bytes) else str(host)
        number = _port(port)
        if not host_allowed(name, number, patterns):
            raise _refuse(name, number, patterns)
        answers = real_getaddrinfo(host, port, *args, **kwargs)
        resolved.update(str(a[4][0]) for a in answers)
        return answers

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        host, port = str(address[0]), int(address[1])
        if host not in resolved and not host_allowed(host, port, patterns):
            raise _refuse(host, port, patterns)

    def connect(self: socket.socket, address: Any) -> None:
        check(self, address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(self, address)
        return real_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]


def _read_paths(root: Path) -> tuple[str, ...]:
    paths = [*SYSTEM_READ, sys.prefix, sys.base_prefix, sys.exec_prefix, str(root)]
    paths += [entry for entry in sys.path if entry]
    # where the SDK and the plugin's imported packages live (editable installs too)
    paths.append(str(Path(__file__).resolve().parent))
    for module in list(sys.modules.values()):
        where = getattr(module, "__file__", None)
        if where and module.__name__.partition(".")[0] not in sys.stdlib_module_names:
            paths.append(os.path.dirname(where))
    out: list[str] = []
    for path in paths:
        real = os.path.realpath(path)
        if os.path.exists(real) and real not in out:
            out.append(real)
    return tuple(out)


def confine(manifest: PluginManifest, root: Path) -> str:
    """Confine this process to what ``manifest`` declares; '' or why the kernel could not."""
    patterns = tuple(manifest.permissions.network_hosts)
    _guard(patterns)
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        return f"the kernel sandbox needs Linux x86_64 (this is {sys.platform})"
    from . import sandbox

    tmp = tempfile.mkdtemp(prefix="imbi-plugin-check-")
    os.environ["TMPDIR"] = tmp
    tempfile.tempdir = tmp
    policy = sandbox.Policy(
        read_paths=_read_paths(root),
        tmp_dir=tmp,
        tcp_ports=tuple(sorted({_split(p)[1] for p in patterns})),
        network=bool(patterns),
    )
    try:
        sandbox.apply(policy)
    except sandbox.SandboxError as exc:
        return str(exc)
    return ""
