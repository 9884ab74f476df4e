"""``TrustedProxyMiddleware``: forwarded headers count only from the configured proxies.

Production trusts ``X-Forwarded-Proto`` to know a request came over HTTPS (secure cookies,
CSRF, the HTTPS redirect, HSTS), and axes trusts ``X-Forwarded-For`` for the client address
when ``IMBI_TRUSTED_PROXY_COUNT`` is set. Anyone who reaches the app port directly could
forge them. This middleware (first in the chain) deletes every forwarded header of a request
whose peer (``REMOTE_ADDR``) is not in ``IMBI_TRUSTED_PROXIES`` (addresses or networks,
default loopback): such a request is plain HTTP from its real address, whatever it claims.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

FORWARDED_HEADERS = (
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_REAL_IP",
    "HTTP_FORWARDED",
)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry)


def trusted(address: str) -> bool:
    try:
        peer = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False  # a unix socket or nonsense: no claim is trusted
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped:
        peer = peer.ipv4_mapped
    entries = tuple(getattr(settings, "IMBI_TRUSTED_PROXIES", ("127.0.0.1", "::1")))
    return any(peer in network for network in _networks(entries))


class TrustedProxyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not trusted(str(request.META.get("REMOTE_ADDR", ""))):
            dropped = [name for name in FORWARDED_HEADERS if request.META.pop(name, None)]
            if dropped:
                logger.info(
                    "forwarded headers from %s ignored (not in IMBI_TRUSTED_PROXIES): %s",
                    request.META.get("REMOTE_ADDR", "?"),
                    ", ".join(name[5:].replace("_", "-").title() for name in dropped),
                )
        return self.get_response(request)
