"""The egress broker: the host-side half of an isolated plugin's network permission.

A runner lives in its own, empty network namespace (``child``): no interface is up, there
is no route anywhere, not even to the host's loopback. Its only way out is the ``net.connect``
host request ``{host, port, family, timeout}`` over the protocol socket. This module answers
it, in the host's network namespace:

1. ``Allowlist.check`` — ``host:port`` must match the plugin's *effective* allowlist: the
   host-side manifest's ``permissions.network_hosts`` (``host``, ``host:port``,
   ``*.suffix[:port]``; a pattern without a port means 443) plus, for each setting named in
   ``permissions.operator_host_settings``, the exact host and port the operator saved there.
   Names are compared case-insensitively without a trailing dot; ``*.example.com`` matches
   ``a.example.com``, never ``example.com`` itself, and a wildcard never matches an IP
   literal (``*.169.254`` is no way to ``169.254.169.254``, which is asked for literally).
2. ``connect`` — the host resolves the name itself (on a small thread pool, so slow DNS
   cannot outlast the call) and connects with a deadline bounded by the call's remaining
   time. A name that resolves to a loopback, link-local (cloud
   metadata), unspecified, multicast or reserved address, or to a known cloud metadata
   address outside link-local (``METADATA_NETWORKS``), is refused unless the plugin asked
   for that address literally or for ``localhost`` (a declared public name cannot be pointed
   at the host's own services by DNS). Whatever was asked, the platform's own services
   (``Platform``: its database, Redis, broker and web port; on every local address when
   they run on this host) are refused, and loopback and private addresses are refused
   unless the operator set ``IMBI_PLUGIN_ALLOW_PRIVATE_HOSTS``.
3. The connected TCP socket travels to the runner as ``SCM_RIGHTS`` data on the reply
   (``protocol.Descriptor``); the host's copy is closed as soon as it is sent.

A refusal is ``PermissionDenied`` naming ``host:port`` (logged as a warning, redacted of the
call's secrets, the first few per call); a failed connection answers
``{"errno": N, "reason": ...}`` so the runner raises the matching ``OSError``. Nothing here
trusts the runner: every field is re-checked.
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from imbi_plugin_sdk import PermissionDenied, Permissions

from .hostnames import host_setting
from .protocol import Descriptor

logger = logging.getLogger("imbi.plugins.isolation")

OP = "net.connect"
FIELDS = {"host", "port", "family", "timeout"}
MAX_CONNECTS = 256  # per call
LOGGED_REFUSALS = 3  # per call; the rest are counted in one line
DEFAULT_PORT = 443
RESOLVER_THREADS = 16
_NAME_RE = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$")


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def normalize_host(host: object) -> str:
    """A lowercase host name or IP literal; ``PermissionDenied`` for anything else."""
    if not isinstance(host, str) or not host or len(host) > 253:
        raise PermissionDenied("network: expected a host name or an IP address")
    text = host.strip().lower().rstrip(".")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    address = _ip(text)
    if address is not None:
        return str(address)
    if not _NAME_RE.match(text):
        raise PermissionDenied("network: expected a host name or an IP address")
    return text


@dataclass(frozen=True, slots=True)
class Rule:
    name: str  # a host, an IP literal, or "*.suffix"
    port: int

    def matches(self, host: str, port: int) -> bool:
        if port != self.port:
            return False
        if self.name.startswith("*."):  # names only: "*.0.1" never covers 127.0.0.1
            return _ip(host) is None and host.endswith(self.name[1:])
        return host == self.name


def _rule(pattern: str) -> Rule | None:
    text = pattern.strip().lower()
    if text.startswith("["):  # [v6]:port
        address, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
        name = address
    elif text.count(":") > 1:  # a bare IPv6 literal
        name, port = text, ""
    else:
        name, _, port = text.partition(":")
    try:
        number = int(port) if port else DEFAULT_PORT
    except ValueError:
        return None
    if not 0 < number < 65536:
        return None
    if not name.startswith("*."):
        literal = _ip(name)
        name = str(literal) if literal is not None else name.rstrip(".")
    return Rule(name, number)


@dataclass(frozen=True)
class Allowlist:
    """Where one call's plugin may connect."""

    rules: tuple[Rule, ...]

    @classmethod
    def build(
        cls, permissions: Permissions, service_settings: Mapping[str, object] | None = None
    ) -> Allowlist:
        rules = [r for r in (_rule(p) for p in permissions.network_hosts) if r is not None]
        for key in permissions.operator_host_settings:
            try:
                ref = host_setting(key, (service_settings or {}).get(key))
            except ValueError:
                continue  # refused at save time; never a way out
            if ref is not None:
                rules.append(Rule(normalize_host(ref.host), ref.port))
        return cls(tuple(dict.fromkeys(rules)))

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(sorted({rule.port for rule in self.rules}))

    def allows(self, host: str, port: int) -> bool:
        return any(rule.matches(host, port) for rule in self.rules)

    def check(self, request: Mapping[str, Any]) -> tuple[str, int]:
        """The request's normalized ``(host, port)``; ``PermissionDenied`` unless allowed."""
        if set(request) - {"t", "id", "op"} - FIELDS:
            raise PermissionDenied("network: a connect request carries only host and port")
        host = normalize_host(request.get("host"))
        port = request.get("port")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise PermissionDenied("network: expected a TCP port between 1 and 65535")
        if not self.rules:
            raise PermissionDenied(
                f"network: {_show(host, port)} refused: the plugin declares no network hosts"
            )
        if not self.allows(host, port):
            raise PermissionDenied(
                f"network: {_show(host, port)} is not among the plugin's declared hosts"
            )
        return host, port


def _show(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# cloud metadata and host-agent endpoints outside link-local: AWS IMDS over IPv6, Alibaba
# Cloud's metadata service, Azure's WireServer (certificates, extension settings)
METADATA_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in ("fd00:ec2::254/128", "100.100.100.200/32", "168.63.129.16/32")
)


def _peer(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A resolved address as an IP (zone dropped, IPv4-mapped IPv6 unwrapped)."""
    ip = _ip(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _metadata(address: str) -> bool:
    """Cloud metadata and host agents: link-local and ``METADATA_NETWORKS``. Never reached,
    not even asked for literally (they hand out the node's own cloud credentials)."""
    ip = _peer(address)
    return ip is None or ip.is_link_local or any(ip in net for net in METADATA_NETWORKS)


def _internal(address: str) -> bool:
    ip = _peer(address)
    return (
        ip is None
        or _metadata(address)
        or ip.is_loopback
        or ip.is_unspecified
        or ip.is_multicast
        or ip.is_reserved
    )


# carrier-grade NAT (RFC 6598) and IPv6 site-local: private in practice, not to ``is_private``
_PRIVATE_EXTRA = tuple(ipaddress.ip_network(net) for net in ("100.64.0.0/10", "fec0::/10"))


def _private(address: str) -> bool:
    """Loopback, private (RFC 1918, unique local, carrier-grade NAT) or unspecified: the
    platform's own network, reached only with the operator's opt-in."""
    ip = _peer(address)
    return (
        ip is None
        or ip.is_loopback
        or ip.is_private
        or ip.is_unspecified
        or any(ip in net for net in _PRIVATE_EXTRA)
    )


def _is_local(address: str) -> bool:
    """An address of this host: loopback, unspecified, or one a socket can bind to here."""
    ip = _peer(address)
    if ip is None or ip.is_loopback or ip.is_unspecified:
        return True
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((str(ip), 0))
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class Platform:
    """What no runner may reach, declared or not: the platform's own database, Redis,
    broker and listening ports; and whether the operator allows private addresses at all
    (``IMBI_PLUGIN_ALLOW_PRIVATE_HOSTS``)."""

    allow_private: bool = False
    remote: frozenset[tuple[str, int]] = frozenset()  # (address, port) of services elsewhere
    local_ports: frozenset[int] = frozenset()  # ports of services on this host (any address)

    def refuses(self, address: str, port: int) -> bool:
        ip = _peer(address)
        if ip is None:
            return True
        if (str(ip), port) in self.remote:
            return True
        return port in self.local_ports and _is_local(str(ip))


_DEFAULT_PORTS = {"redis": 6379, "rediss": 6379, "amqp": 5672, "amqps": 5671, "postgres": 5432}
_DB_PORTS = {"postgresql": 5432, "mysql": 3306, "oracle": 1521}


def _dependency_endpoints() -> list[tuple[str, int]]:
    """(host, port) of every service the platform's settings name."""
    from urllib.parse import urlsplit

    from django.conf import settings

    found: list[tuple[str, int]] = []
    for db in getattr(settings, "DATABASES", {}).values():
        engine = str(db.get("ENGINE", ""))
        kind = next((k for k in _DB_PORTS if k in engine), "")
        host = str(db.get("HOST") or "")
        if not kind or host.startswith("/"):
            continue  # SQLite, or a Unix socket (seccomp refuses runners those)
        found.append((host or "localhost", int(db.get("PORT") or _DB_PORTS[kind])))
    urls: list[str] = []
    for name in (
        "REDIS_URL",
        "CELERY_BROKER_URL",
        "CELERY_RESULT_BACKEND",
        "IMBI_PLUGIN_BREAKER_REDIS_URL",
    ):
        value = getattr(settings, name, None)
        if isinstance(value, str):
            urls.append(value)
    for cache in getattr(settings, "CACHES", {}).values():
        location = cache.get("LOCATION")
        urls.extend([location] if isinstance(location, str) else list(location or ()))
    for url in urls:
        for part in str(url).split(";"):  # a broker URL may list fail-over hosts
            try:
                parsed = urlsplit(part.strip())
                port = parsed.port or _DEFAULT_PORTS.get(parsed.scheme, 0)
            except ValueError:
                continue
            if parsed.hostname and port:
                found.append((parsed.hostname, port))
    listening = os.environ.get("PORT", "") or "8000"  # imbi.gunicorn_conf: 0.0.0.0:$PORT
    if listening.isdigit():
        found.append(("127.0.0.1", int(listening)))
    return found


_platform: tuple[float, int, Platform] | None = None
PLATFORM_TTL = 60.0  # seconds a process keeps its view of the platform's endpoints


def platform() -> Platform:
    """This process's ``Platform``: endpoints resolved at most every ``PLATFORM_TTL``
    seconds, the operator's opt-in read from the settings every time."""
    global _platform
    from django.conf import settings

    allow_private = bool(getattr(settings, "IMBI_PLUGIN_ALLOW_PRIVATE_HOSTS", False))
    now = time.monotonic()
    cached = _platform
    if cached is not None and cached[1] == os.getpid() and now - cached[0] < PLATFORM_TTL:
        return dataclasses.replace(cached[2], allow_private=allow_private)
    remote: set[tuple[str, int]] = set()
    local: set[int] = set()
    for host, port in _dependency_endpoints():
        try:
            infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        except OSError:
            infos = []
        for info in infos:
            address = str(info[4][0])
            if _is_local(address):
                local.add(port)
            ip = _peer(address)
            if ip is not None:
                remote.add((str(ip), port))
    found = Platform(allow_private, frozenset(remote), frozenset(local))
    _platform = (now, os.getpid(), found)
    return found


def _may_reach_internal(host: str) -> bool:
    """Asked for literally: an IP literal, or ``localhost`` itself."""
    return _ip(host) is not None or host == "localhost" or host.endswith(".localhost")


_resolver: tuple[int, ThreadPoolExecutor] | None = None
_resolver_lock = threading.Lock()


class LookupPending(OSError):
    """This call's previous name look-up is still running (it timed out for the call but
    holds a resolver thread): one call may hold at most one, so a plugin asking for names
    that never answer cannot take every other tenant's resolver threads."""


def _resolve(
    host: str, port: int, timeout: float, pending: set[Any] | None = None
) -> list[tuple[Any, ...]]:
    """The system resolver on a small thread pool, so a slow DNS answer cannot hold the
    call past its deadline (``TimeoutError``; the look-up finishes in the background).
    ``pending``: the call's look-ups still running (at most one at a time)."""
    if pending is not None:
        pending.difference_update({future for future in pending if future.done()})
        if pending:
            raise LookupPending(errno.EAGAIN, "a previous name look-up is still running")
    global _resolver
    with _resolver_lock:
        if _resolver is None or _resolver[0] != os.getpid():  # threads do not survive a fork
            _resolver = (
                os.getpid(),
                ThreadPoolExecutor(max_workers=RESOLVER_THREADS, thread_name_prefix="imbi-dns"),
            )
        pool = _resolver[1]
    future = pool.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    if pending is not None:
        pending.add(future)
    try:
        return future.result(timeout=timeout)
    except FutureTimeout:
        future.cancel()
        raise TimeoutError from None


def _addresses(
    host: str, port: int, family: int, timeout: float, pending: set[Any] | None = None
) -> list[tuple[Any, ...]]:
    """``getaddrinfo`` results, the runner socket's family first (``OSError`` if none)."""
    if _ip(host) is not None:  # a literal needs no look-up
        infos = socket.getaddrinfo(
            host, port, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP, socket.AI_NUMERICHOST
        )
    else:
        infos = _resolve(host, port, timeout, pending)
    if family in (socket.AF_INET, socket.AF_INET6):
        infos.sort(key=lambda info: info[0] != family)
    return infos


def _wanted(request: Mapping[str, Any]) -> float | None:
    """The runner's own connect timeout, when it is a positive number (``10**400`` is no
    ``OverflowError``: it is no limit, the call's deadline still is)."""
    wanted = request.get("timeout")
    if isinstance(wanted, bool) or not isinstance(wanted, int | float):
        return None
    try:
        seconds = float(wanted)
    except OverflowError:
        return None
    return seconds if seconds > 0 else None


def connect(
    request: Mapping[str, Any],
    allowlist: Allowlist,
    deadline: float,
    pending: set[Any] | None = None,
    own: Platform | None = None,
) -> Any:
    """Answer one ``net.connect``: a ``Descriptor`` with a connected socket, or an errno.
    ``pending``: the call's name look-ups still running (``_resolve``); ``own``: what of
    the platform is never reached (``platform()`` when not given)."""
    host, port = allowlist.check(request)
    own = own if own is not None else platform()
    remaining = deadline - time.monotonic()
    wanted = _wanted(request)
    if wanted is not None:
        remaining = min(remaining, wanted)
    if remaining <= 0:
        return _failure(errno.ETIMEDOUT, "the call's deadline has passed")
    family = request.get("family")
    try:
        infos = _addresses(host, port, family if isinstance(family, int) else 0, remaining, pending)
    except LookupPending as exc:
        return _failure(errno.EAGAIN, f"resolving {host}: {exc.strerror}")
    except TimeoutError:
        return _failure(errno.ETIMEDOUT, f"resolving {host} timed out")
    except socket.gaierror as exc:
        return {"gaierror": exc.errno, "reason": f"cannot resolve {host}"}
    except OSError as exc:
        return _failure(exc.errno or errno.EHOSTUNREACH, f"cannot resolve {host}")
    infos = [info for info in infos if not _metadata(str(info[4][0]))]
    if not infos:
        raise PermissionDenied(
            f"network: {_show(host, port)} is a cloud metadata or link-local address (refused)"
        )
    infos = [info for info in infos if not own.refuses(str(info[4][0]), port)]
    if not infos:
        raise PermissionDenied(
            f"network: {_show(host, port)} is one of the platform's own services (refused)"
        )
    if not own.allow_private:
        infos = [info for info in infos if not _private(str(info[4][0]))]
        if not infos:
            raise PermissionDenied(
                f"network: {_show(host, port)} is a loopback or private address; the "
                "platform's operator has not allowed those (IMBI_PLUGIN_ALLOW_PRIVATE_HOSTS)"
            )
    if not _may_reach_internal(host):
        infos = [info for info in infos if not _internal(str(info[4][0]))]
        if not infos:
            raise PermissionDenied(
                f"network: {_show(host, port)} resolves to an internal address (refused)"
            )
    last: OSError = OSError(errno.EHOSTUNREACH, "no address")
    for af, kind, proto, _, address in infos:
        left = deadline - time.monotonic()
        if wanted is not None:
            left = min(left, wanted)
        if left <= 0:
            return _failure(errno.ETIMEDOUT, f"connecting to {_show(host, port)} timed out")
        sock = socket.socket(af, kind, proto)
        try:
            sock.settimeout(left)
            sock.connect(address)
            sock.setblocking(True)
            fd = sock.detach()
        except TimeoutError:
            sock.close()
            last = OSError(errno.ETIMEDOUT, "timed out")
            continue
        except OSError as exc:
            sock.close()
            last = exc
            continue
        except BaseException:
            sock.close()
            raise
        return Descriptor({"family": int(af), "peer": list(address[:2])}, fd)
    return _failure(last.errno or errno.EHOSTUNREACH, f"{_show(host, port)}: {last.strerror}")


def _failure(code: int, reason: str) -> dict[str, Any]:
    return {"errno": int(code), "reason": reason[:200]}


class Broker:
    """``net.connect`` for one call: its allowlist, its deadline, a per-call cap."""

    def __init__(
        self,
        allowlist: Allowlist,
        *,
        deadline: float,
        slug: str = "",
        secrets: Iterable[str] = (),
    ) -> None:
        self.allowlist = allowlist
        self.deadline = deadline
        self.slug = slug
        self.secrets = [s for s in secrets if s and len(s) >= 4]
        self.count = 0
        self.refused = 0
        self.pending: set[Any] = set()  # this call's name look-ups still running

    def __call__(self, request: Mapping[str, Any]) -> Any:
        self.count += 1
        if self.count > MAX_CONNECTS:
            raise PermissionDenied(f"network: more than {MAX_CONNECTS} connections in one call")
        try:
            return connect(request, self.allowlist, self.deadline, self.pending)
        except PermissionDenied as exc:
            detail = str(exc.detail)
            for secret in sorted(self.secrets, key=len, reverse=True):
                detail = detail.replace(secret, "***")
            exc.detail = detail
            self.refused += 1
            if self.refused <= LOGGED_REFUSALS:
                logger.warning("plugin %s: %s", self.slug, detail)
            elif self.refused == LOGGED_REFUSALS + 1:
                logger.warning(
                    "plugin %s: further refused connections in this call not logged", self.slug
                )
            raise
