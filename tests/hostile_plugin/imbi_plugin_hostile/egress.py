"""``hostile-egress``: tries every way out of the runner's network namespace.

``options["paths"]`` maps a label to ``"<how> <host> <port>"``; the report has one key per
label, ``<label>_CONNECTED_<echo>`` or ``<label>_REFUSED_<exception>_<errno name>``. Ways:

* ``tcp`` — ``socket.create_connection`` (the egress shim, by name or address), sends
  ``ping`` and reads the server's answer;
* ``http`` — ``urllib.request`` GET (``http.client`` over the shim);
* ``httpx`` / ``httpx_async`` — ``httpx.Client`` / ``httpx.AsyncClient`` GET (httpcore, anyio);
* ``async`` — ``asyncio.open_connection`` (``loop.getaddrinfo`` and ``sock_connect``);
* ``raw`` — ``_socket.socket(...).connect`` (skips the shim);
* ``ctypes`` — libc ``socket`` + ``connect`` (skips Python entirely);
* ``fastopen`` — ``sendto(..., MSG_FASTOPEN)`` (an implicit connect, no ``connect`` call);
* ``pivot`` — ``host/other-port``: a broker socket to ``host:port``, disconnected with
  ``connect(AF_UNSPEC)``, then fast-opened to ``host:other-port`` (the host's namespace);
* ``relisten`` — a broker socket to ``host:port``, disconnected, then ``listen()`` (an
  automatic bind on every address of the host's namespace);
* ``udp`` — a DNS query by UDP with ``_socket`` (``host`` is the DNS server);
* ``resolve`` — the real resolver (``_socket.getaddrinfo``);
* ``tls`` — TLS over ``create_connection``, verified against ``paths["__ca__"]`` (PEM) and
  the host *name* (SNI), sends ``ping``;
* ``unix`` — a pathname Unix socket (``host`` is its path): the network namespace does not
  cover those, seccomp refuses creating the socket;
* ``unix_dgram`` — a datagram ``socketpair`` whose ``sendto`` names a pathname socket;
* ``broker`` — a ``net.connect`` request sent straight to the host (``egress_shim.request_fd``).
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import errno
import os
import socket
import struct
import urllib.request
from typing import Any

from imbi_plugin_sdk import Permissions

from .behaviours import Base, _manifest

TIMEOUT = 2.0


def _outcome(exc: BaseException) -> str:
    code = getattr(exc, "errno", None)
    name = errno.errorcode.get(code, str(code)) if isinstance(code, int) else "none"
    return f"REFUSED_{type(exc).__name__}_{name}"


def _tcp(host: str, port: int) -> str:
    with socket.create_connection((host, port), timeout=TIMEOUT) as conn:
        conn.sendall(b"ping")
        return conn.recv(64).decode()


def _http(host: str, port: int) -> str:
    with urllib.request.urlopen(f"http://{host}:{port}/", timeout=TIMEOUT) as response:
        return f"{response.status}"


def _httpx(host: str, port: int) -> str:
    import httpx

    with httpx.Client(timeout=TIMEOUT) as client:
        return str(client.get(f"http://{host}:{port}/").status_code)


def _httpx_async(host: str, port: int) -> str:
    import httpx

    async def go() -> str:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            return str((await client.get(f"http://{host}:{port}/")).status_code)

    return asyncio.run(go())


def _async(host: str, port: int) -> str:
    async def go() -> str:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"ping")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(64), TIMEOUT)
        writer.close()
        return data.decode()

    return asyncio.run(go())


def _tls(host: str, port: int, ca: str = "") -> str:
    import ssl

    context = ssl.create_default_context(cadata=ca)
    with socket.create_connection((host, port), timeout=TIMEOUT) as raw:
        with context.wrap_socket(raw, server_hostname=host) as conn:
            conn.sendall(b"ping")
            return conn.recv(64).decode()


def _raw(host: str, port: int) -> str:
    import _socket

    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    try:
        sock.settimeout(TIMEOUT)
        sock.connect((host, port))
        return "raw"
    finally:
        sock.close()


def _ctypes(host: str, port: int) -> str:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    try:
        address = struct.pack("=HH4s8x", socket.AF_INET, socket.htons(port), socket.inet_aton(host))
        if libc.connect(fd, address, len(address)) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        return "ctypes"
    finally:
        os.close(fd)


def _fastopen(host: str, port: int) -> str:
    import _socket

    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    try:
        sock.sendto(b"ping", socket.MSG_FASTOPEN, (host, port))
        return "fastopen"
    finally:
        sock.close()


def _udp(host: str, port: int) -> str:
    import _socket

    query = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    query += b"".join(bytes([len(p)]) + p.encode() for p in ("example", "com"))
    query += b"\x00" + struct.pack(">HH", 1, 1)
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        sock.settimeout(TIMEOUT)
        sock.sendto(query, (host, port))
        return f"answer{len(sock.recv(512))}"
    finally:
        sock.close()


def _resolve(host: str, port: int) -> str:
    import _socket

    return str(_socket.getaddrinfo(host, port)[0][4][0])


def _unix(path: str, port: int) -> str:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(TIMEOUT)
        sock.connect(path)
        sock.sendall(b"ping")
        return sock.recv(64).decode() or "connected"
    finally:
        sock.close()


def _unix_dgram(path: str, port: int) -> str:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with left, right:
        left.sendto(b"ping", path)
    return "sent"


def _broker(host: str, port: int) -> str:
    from plugins_core.isolation import egress_shim

    fd = egress_shim.request_fd(host, port, socket.AF_INET, TIMEOUT)
    os.close(fd)
    return "broker"


def _pivot(host: str, port: int) -> str:
    from plugins_core.isolation import egress_shim

    target, _, other = host.partition("/")
    fd = egress_shim.request_fd(target, port, socket.AF_INET, TIMEOUT)
    sock = socket.socket(fileno=fd)
    libc = ctypes.CDLL(None, use_errno=True)
    unspec = struct.pack("=H14x", 0)
    libc.connect(fd, unspec, len(unspec))
    sock.sendto(b"ping", socket.MSG_FASTOPEN, (target, int(other)))
    sock.settimeout(TIMEOUT)
    return sock.recv(64).decode()


def _relisten(host: str, port: int) -> str:
    from plugins_core.isolation import egress_shim

    fd = egress_shim.request_fd(host, port, socket.AF_INET, TIMEOUT)
    sock = socket.socket(fileno=fd)
    libc = ctypes.CDLL(None, use_errno=True)
    unspec = struct.pack("=H14x", 0)
    libc.connect(fd, unspec, len(unspec))
    try:
        sock.listen()
        return f"listening{sock.getsockname()[1]}"
    finally:
        sock.close()


WAYS: dict[str, Any] = {
    "relisten": _relisten,
    "pivot": _pivot,
    "tcp": _tcp,
    "http": _http,
    "httpx": _httpx,
    "httpx_async": _httpx_async,
    "async": _async,
    "raw": _raw,
    "ctypes": _ctypes,
    "fastopen": _fastopen,
    "udp": _udp,
    "resolve": _resolve,
    "broker": _broker,
    "unix": _unix,
    "unix_dgram": _unix_dgram,
}


class Egress(Base):
    """Declares no host; the tests grant hosts per call (``permissions=``) or none. Contract
    1.1, so a grant may name operator-chosen host settings."""

    manifest = dataclasses.replace(
        _manifest("hostile-egress", permissions=Permissions()), api_version="1.1"
    )

    def attack(self) -> list[str]:
        report = []
        probes = dict(self.context.options.get("paths") or {})  # type: ignore[call-overload]
        ca = str(probes.pop("__ca__", ""))
        for label, probe in probes.items():
            how, host, port = str(probe).split()
            try:
                answer = _tls(host, int(port), ca) if how == "tls" else WAYS[how](host, int(port))
                report.append(f"{label}_CONNECTED_{answer}")
            except Exception as exc:
                report.append(f"{label}_{_outcome(exc)}")
        return report


class SmuggleDescriptors(Base):
    """Finds its protocol socket and sends the host a forged frame carrying 100 descriptors
    of its own (``SCM_RIGHTS``): the host must neither keep them nor trust the frame."""

    manifest = _manifest("hostile-smuggle-fds")

    def attack(self) -> list[str]:
        import json

        sent = 0
        for fd in range(3, 64):
            try:
                sock = socket.socket(fileno=os.dup(fd))
            except OSError:
                continue
            with sock:
                if sock.family != socket.AF_UNIX:
                    continue
                body = json.dumps({"t": "host", "id": -1, "op": "storage.keys", "prefix": ""})
                payload = struct.pack(">I", len(body)) + body.encode()
                extra = [os.open("/dev/null", os.O_RDONLY) for _ in range(100)]
                try:
                    socket.send_fds(sock, [payload], extra)
                    sent += len(extra)
                finally:
                    for item in extra:
                        os.close(item)
        return [f"SENT_{sent}"]
