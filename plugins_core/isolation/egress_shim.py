"""Runner side of the egress broker: TCP connections by name through the host.

The runner's network namespace is empty (``child``), so nothing it connects itself goes
anywhere. ``install()`` (called by the runner before any plugin code is imported, only when
the manifest declares hosts) patches the ``socket`` module so ordinary client code keeps
working unchanged (urllib3/botocore, httpcore/httpx sync and async, ``asyncio``, ``ssl``):

* ``socket.getaddrinfo`` / ``gethostbyname`` answer a host *name* with a synthetic address
  (198.18.0.0/15, or ``100::/64`` for IPv6: ranges that are never routed) remembered in a
  map; IP literals and passive (``host=None``) look-ups go to the real function;
* ``socket.socket.connect`` / ``connect_ex`` on an ``AF_INET``/``AF_INET6`` stream socket ask
  the host for a socket connected to (original host name, port) — the ``net.connect`` host
  request — and ``dup2`` the descriptor that comes back onto the plugin's socket, keeping its
  timeout (blocking mode) and the common options (``TCP_NODELAY``, keep-alive). TLS still
  verifies the *name*: clients pass the name as ``server_hostname``, never the address.

A refusal raises ``PermissionError`` (``EACCES``) whose text names ``host:port``; a failed
connection raises the ``OSError`` the host met (``ConnectionRefusedError``, ``TimeoutError``,
``socket.gaierror``). This is convenience, not the boundary: a plugin that skips it
(``_socket``, ctypes, UDP) finds no route and Landlock refusing TCP ``connect``.

Only the standard library is imported here.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Asker", "bind", "install", "installed", "request_fd"]

# (host, port, family, timeout) -> (answer value, descriptors); raises OSError on refusal
Asker = Callable[[str, int, int, float | None], tuple[Any, list[int]]]

_V4_BASE = int(ipaddress.IPv4Address("198.18.0.0"))
_V4_SIZE = 1 << 17
_V6_BASE = int(ipaddress.IPv6Address("100::"))
_KEEP_OPTIONS = (
    (socket.IPPROTO_TCP, socket.TCP_NODELAY),
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE),
    (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPIDLE", 4)),
    (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPINTVL", 5)),
    (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPCNT", 6)),
)

_lock = threading.Lock()
_names: dict[str, str] = {}  # synthetic address -> host name
_numbers: dict[str, int] = {}  # host name -> index
_asker: Asker | None = None
_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect
_installed = False


def bind(asker: Asker | None) -> None:
    """The current call's way to the host (``None`` between calls: no connection)."""
    global _asker
    _asker = asker


def installed() -> bool:
    return _installed


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _synthetic(name: str, family: int) -> str:
    with _lock:
        index = _numbers.get(name)
        if index is None:
            index = len(_numbers) + 1
            if index >= _V4_SIZE:
                raise socket.gaierror(socket.EAI_AGAIN, "too many host names")
            _numbers[name] = index
        v4 = str(ipaddress.IPv4Address(_V4_BASE + index))
        v6 = str(ipaddress.IPv6Address(_V6_BASE + index))
        _names[v4] = _names[v6] = name
    return v6 if family == socket.AF_INET6 else v4


def _port(port: Any) -> int:
    if port is None:
        return 0
    if isinstance(port, bytes):
        port = port.decode()
    if isinstance(port, str) and not port.isdigit():
        return socket.getservbyname(port, "tcp")
    return int(port)


def getaddrinfo(
    host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
) -> list[tuple[Any, ...]]:
    if isinstance(host, bytes):
        host = host.decode("idna")
    if (
        host is None
        or not isinstance(host, str)
        or _is_literal(host.strip("[]"))
        or flags & socket.AI_NUMERICHOST
        or family not in (0, socket.AF_INET, socket.AF_INET6)
    ):
        return _real_getaddrinfo(host, port, family, type, proto, flags)
    name = host.lower().rstrip(".")
    with contextlib.suppress(UnicodeError):
        name = name.encode("idna").decode("ascii")  # the host checks the ASCII form
    if not name:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    family = socket.AF_INET6 if family == socket.AF_INET6 else socket.AF_INET
    address = _synthetic(name, family)
    number = _port(port)
    sockaddr: tuple[Any, ...] = (address, number)
    if family == socket.AF_INET6:
        sockaddr = (address, number, 0, 0)
    canon = name if flags & socket.AI_CANONNAME else ""
    kinds = [type] if type else [socket.SOCK_STREAM, socket.SOCK_DGRAM]
    results = []
    for kind in kinds:
        udp = kind == socket.SOCK_DGRAM
        protocol = proto or (socket.IPPROTO_UDP if udp else socket.IPPROTO_TCP)
        results.append(
            (socket.AddressFamily(family), socket.SocketKind(kind), protocol, canon, sockaddr)
        )
    return results


def gethostbyname(host: str) -> str:
    return str(getaddrinfo(host, 0, socket.AF_INET, socket.SOCK_STREAM)[0][4][0])


def request_fd(host: str, port: int, family: int = 0, timeout: float | None = None) -> int:
    """A descriptor of a TCP socket the host connected to ``host:port`` (the caller owns it)."""
    asker = _asker
    if asker is None:
        raise PermissionError(13, "network: connections are possible only during a call")
    value, fds = asker(host, int(port), family, timeout)
    if isinstance(value, dict) and not fds:
        if "gaierror" in value:
            raise socket.gaierror(int(value["gaierror"]), str(value.get("reason", "")))
        raise OSError(int(value.get("errno", 113)), str(value.get("reason", "")))
    if len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise OSError(71, "network: the host answered without a connection")  # EPROTO
    return fds[0]


def _adopt(sock: socket.socket, fd: int) -> None:
    """Make ``sock`` the connection ``fd`` holds, with ``sock``'s own settings."""
    timeout = sock.gettimeout()
    options = []
    for level, option in _KEEP_OPTIONS:
        try:
            options.append((level, option, sock.getsockopt(level, option)))
        except OSError:
            continue
    os.dup2(fd, sock.fileno(), inheritable=False)
    sock.settimeout(timeout)  # blocking mode lives on the file, not on the descriptor
    for level, option, value in options:
        try:
            sock.setsockopt(level, option, value)
        except OSError:
            continue


def _brokered(sock: socket.socket, address: Any) -> bool:
    return (
        sock.family in (socket.AF_INET, socket.AF_INET6)
        and sock.type == socket.SOCK_STREAM
        and isinstance(address, tuple)
        and len(address) >= 2
        and isinstance(address[0], str)
    )


def connect(self: socket.socket, address: Any) -> None:
    if not _brokered(self, address):
        return _real_connect(self, address)
    host = str(address[0]).strip("[]")
    name = _names.get(host.split("%", 1)[0], host)
    fd = request_fd(name, int(address[1]), int(self.family), self.gettimeout())
    try:
        _adopt(self, fd)
    finally:
        os.close(fd)
    return None


def connect_ex(self: socket.socket, address: Any) -> int:
    try:
        connect(self, address)
    except OSError as exc:
        return exc.errno or 111
    return 0


def install() -> None:
    """Patch the ``socket`` module (idempotent)."""
    global _installed
    if _installed:
        return
    socket.getaddrinfo = getaddrinfo
    socket.gethostbyname = gethostbyname
    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
    _installed = True
