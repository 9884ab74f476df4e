"""Fetching an index or an artifact over HTTP(S) the way TUF fetches: nothing is trusted
before its signature, so the transport only has to keep the fetch bounded and on its host.

``get(url, ...)``:

- the host is resolved once and the connection made to the resolved address that passed the
  egress broker's address rules (``isolation.egress``): cloud metadata, link-local, loopback,
  unspecified, multicast and reserved addresses are refused (``fetch_refused``) unless the
  operator allows internal indexes (``IMBI_PLUGIN_INDEX_ALLOW_INTERNAL``); no second look-up
  can rebind the name between the check and the connect;
- redirects are followed only on the same origin (scheme, host and port), at most
  ``MAX_REDIRECTS`` times; a redirect elsewhere is ``fetch_refused``;
- ``limit``: an announced ``Content-Length`` above it is refused before the body is read,
  and never more than ``limit + 1`` bytes are read;
- a total deadline per download (``IMBI_PLUGIN_FETCH_DEADLINE`` seconds) and a minimum
  average rate (``IMBI_PLUGIN_FETCH_MIN_RATE`` bytes/s, enforced after
  ``IMBI_PLUGIN_FETCH_RATE_GRACE`` seconds): a mirror trickling bytes is cut off.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from plugins_core.isolation.egress import _internal, _metadata
from plugins_core.supply.errors import FetchRefused, SupplyChainError

__all__ = ["MAX_REDIRECTS", "Limits", "get", "origin", "refuse_internal"]

MAX_REDIRECTS = 5
USER_AGENT = "imbi-plugin-index/1"


@dataclass(frozen=True, slots=True)
class Limits:
    deadline: float = 120.0
    min_rate: float = 16 * 1024
    grace: float = 10.0
    allow_internal: bool = False

    @classmethod
    def from_settings(cls) -> Limits:
        from django.conf import settings

        return cls(
            deadline=float(getattr(settings, "IMBI_PLUGIN_FETCH_DEADLINE", 120.0)),
            min_rate=float(getattr(settings, "IMBI_PLUGIN_FETCH_MIN_RATE", 16 * 1024)),
            grace=float(getattr(settings, "IMBI_PLUGIN_FETCH_RATE_GRACE", 10.0)),
            allow_internal=bool(getattr(settings, "IMBI_PLUGIN_INDEX_ALLOW_INTERNAL", False)),
        )


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port


def refuse_internal(host: str, port: int, *, allow_internal: bool, what: str) -> str:
    """The first resolved address of ``host`` the address rules allow (``fetch_refused``
    when none is); ``OSError`` when the name does not resolve."""
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    addresses = [str(info[4][0]) for info in infos]
    allowed = [a for a in addresses if allow_internal or not (_internal(a) or _metadata(a))]
    if not allowed:
        raise FetchRefused(
            f"{what} host {host} resolves to an internal, loopback, link-local or metadata "
            f"address ({', '.join(sorted(set(addresses)))[:200]}); refused "
            "(IMBI_PLUGIN_INDEX_ALLOW_INTERNAL allows it)",
            host=host,
        )
    return allowed[0]


def _connection(
    scheme: str, host: str, port: int, address: str, timeout: float
) -> http.client.HTTPConnection:
    def create(
        _address: tuple[str, int], timeout: float | None = None, source: object = None
    ) -> socket.socket:
        return socket.create_connection((address, port), timeout)

    connection: http.client.HTTPConnection
    if scheme == "https":
        connection = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    connection._create_connection = create  # type: ignore[attr-defined]  # the checked address
    return connection


def get(
    url: str,
    *,
    limit: int,
    error: type[SupplyChainError],
    what: str,
    limits: Limits,
    too_large: Callable[[int], SupplyChainError] | None = None,
) -> bytes:
    """The body of ``url``: at most ``limit + 1`` bytes (see the module docstring)."""
    started = time.monotonic()
    first = origin(url)
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        scheme, host, port = origin(current)
        if scheme not in ("http", "https") or not host or port < 0:
            raise FetchRefused(f"{what} url {current[:200]!r} is not an http(s) URL with a host")
        if (scheme, host, port) != first:
            raise FetchRefused(
                f"{what} {url[:200]} redirects to another scheme, host or port "
                f"({current[:200]}); refused",
                location=current[:200],
            )
        remaining = limits.deadline - (time.monotonic() - started)
        if remaining <= 0:
            raise error(f"{what} {url}: not fetched within {limits.deadline:g}s")
        try:
            address = refuse_internal(host, port, allow_internal=limits.allow_internal, what=what)
        except OSError as exc:
            raise error(f"{what} {url} is unreachable: {exc}") from None
        parts = urllib.parse.urlsplit(current)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection = _connection(scheme, host, port, address, min(remaining, 30.0))
        try:
            connection.request("GET", path, headers={"User-Agent": USER_AGENT})
            response = connection.getresponse()
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location") or ""
                current = urllib.parse.urljoin(current, location)
                continue
            if response.status != 200:
                raise error(f"{what} {url}: HTTP {response.status}")
            announced = response.getheader("Content-Length")
            if announced and announced.isdigit() and int(announced) > limit:
                if too_large is not None:
                    raise too_large(int(announced))
                raise error(f"{what} {url} announces {announced} bytes, more than {limit}")
            return _body(response, connection, limit, error, what, url, started, limits)
        except SupplyChainError:
            raise
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise error(f"{what} {url} is unreachable: {exc}") from None
        finally:
            connection.close()
    raise FetchRefused(f"{what} {url}: more than {MAX_REDIRECTS} redirects")


def _body(
    response: http.client.HTTPResponse,
    connection: http.client.HTTPConnection,
    limit: int,
    error: type[SupplyChainError],
    what: str,
    url: str,
    started: float,
    limits: Limits,
) -> bytes:
    chunks: list[bytes] = []
    received = 0
    while received <= limit:
        elapsed = time.monotonic() - started
        if elapsed >= limits.deadline:
            raise error(f"{what} {url}: not fetched within {limits.deadline:g}s ({received} bytes)")
        if elapsed >= limits.grace and received < limits.min_rate * elapsed:
            raise error(
                f"{what} {url}: slower than {limits.min_rate:g} bytes/s ({received} bytes "
                f"in {elapsed:.1f}s)"
            )
        if connection.sock is not None:
            left = limits.deadline - elapsed
            if elapsed < limits.grace:
                left = min(left, limits.grace - elapsed + 0.01)
            connection.sock.settimeout(max(0.01, left))
        try:
            block = response.read1(min(1 << 16, limit + 1 - received))
        except TimeoutError:
            continue  # the deadline or the rate decides at the top of the loop
        if not block:
            break
        chunks.append(block)
        received += len(block)
    return b"".join(chunks)
