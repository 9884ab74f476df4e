"""Throttling of authentication: the login forms and API tokens, both kept in the cache.

- **Login forms** (``/admin/login/`` and ``/accounts/login/``): django-axes with its cache
  handler (Redis in production). After ``IMBI_LOGIN_FAILURE_LIMIT`` failed attempts for one
  username from one client address, that pair is locked out for ``IMBI_LOGIN_LOCKOUT_MINUTES``,
  even with the right password; the form answers 429 with ``registration/locked_out.html``.
  ``LoginThrottleBackend`` is axes' backend, except that a call to ``authenticate()`` without
  a request (management commands, the test client's ``login()``) is left to the next backend:
  every login over HTTP passes its request.
- **API tokens**: ``TokenFailures`` counts failed ``Authorization: Token`` attempts per client
  address; at ``IMBI_TOKEN_FAILURE_LIMIT`` the address is locked out for the same cool-off,
  valid token or not, and the API answers 429 problem+json ``throttled`` with Retry-After
  (``imbi.api.authentication.ThrottledTokenAuthentication``).

The client address is axes' (``REMOTE_ADDR``, or the forwarded address when
``IMBI_TRUSTED_PROXY_COUNT`` proxies are trusted).

**During a Redis outage** (docs/decisions/0023-production-faults.md) the counts move to
this process's memory (``throttle_cache``): throttling keeps working, per process instead of
per platform, and never answers 500. The switch follows the cache's outage latch
(``imbi.core.cache``), so a frozen Redis costs a log-in at most one short timeout per retry
interval. Counts made during the outage are forgotten when Redis is back (fail open for them).
"""

from __future__ import annotations

import math
import time
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.handlers.cache import AxesCacheHandler
from axes.helpers import get_client_ip_address
from django.conf import settings
from django.core.cache import BaseCache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .cache import CacheUnavailable, ResilientRedisCache, latched

__all__ = [
    "LoginThrottleBackend",
    "ResilientAxesHandler",
    "TokenFailures",
    "client_address",
    "lockout_response",
    "throttle_cache",
]

# This process's counts while Redis is down (LocMemCache storage is per process, per name).
_LOCAL = LocMemCache("imbi-throttle-fallback", {"OPTIONS": {"MAX_ENTRIES": 10000}})


def throttle_cache() -> BaseCache:
    """The shared cache, or this process's memory while the shared Redis is marked down."""
    shared = caches["default"]
    if isinstance(shared, ResilientRedisCache) and latched(shared._location()):
        return _LOCAL
    return shared


class ResilientAxesHandler(AxesCacheHandler):  # type: ignore[misc]
    """axes' cache handler on ``throttle_cache()``: a Redis outage never fails a log-in."""

    @property
    def cache(self) -> BaseCache:
        return throttle_cache()

    @cache.setter
    def cache(self, value: Any) -> None:  # AxesCacheHandler.__init__ assigns it
        pass

    def user_login_failed(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().user_login_failed(*args, **kwargs)
        except CacheUnavailable:  # Redis failed during this call: it is latched now
            super().user_login_failed(*args, **kwargs)

    def user_logged_in(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().user_logged_in(*args, **kwargs)
        except CacheUnavailable:
            super().user_logged_in(*args, **kwargs)

    def reset_attempts(self, *args: Any, **kwargs: Any) -> int:
        try:
            return int(super().reset_attempts(*args, **kwargs))
        except CacheUnavailable:
            return int(super().reset_attempts(*args, **kwargs))


class LoginThrottleBackend(AxesStandaloneBackend):  # type: ignore[misc]
    """django-axes' lockout check, for authentication that comes with a request."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)  # type: ignore[no-any-return]


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """The locked-out login form: 429, a clear message, Retry-After (AXES_LOCKOUT_CALLABLE)."""
    seconds = _cool_off_seconds()
    minutes = math.ceil(seconds / 60)
    retry_in = (
        f"{minutes} minute{'s' if minutes != 1 else ''}"
        if seconds >= 60
        else (f"{seconds} second{'s' if seconds != 1 else ''}")
    )
    response = render(
        request,
        "registration/locked_out.html",
        {"failure_limit": settings.AXES_FAILURE_LIMIT, "retry_in": retry_in},
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response


def client_address(request: HttpRequest) -> str:
    return get_client_ip_address(request) or "unknown"


def _cool_off_seconds() -> int:
    return max(1, int(settings.AXES_COOLOFF_TIME.total_seconds()))


class TokenFailures:
    """Failed API token attempts of one client address, in the cache."""

    def __init__(self, request: HttpRequest) -> None:
        address = client_address(request)
        self._count_key = f"imbi:token-failures:{address}"
        self._lock_key = f"imbi:token-lockout:{address}"

    def retry_after(self) -> int | None:
        """Seconds until the lockout ends, or ``None`` when the address is not locked out."""
        until = throttle_cache().get(self._lock_key)
        if until is None:
            return None
        return max(1, math.ceil(float(until) - time.time()))

    def failed(self) -> None:
        try:
            self._count(throttle_cache())
        except CacheUnavailable:  # Redis failed during this call: it is latched now
            self._count(throttle_cache())

    def _count(self, cache: BaseCache) -> None:
        timeout = _cool_off_seconds()
        cache.add(self._count_key, 0, timeout=timeout)
        try:
            count = cache.incr(self._count_key)
        except ValueError:  # expired between add and incr
            cache.set(self._count_key, 1, timeout=timeout)
            count = 1
        cache.touch(self._count_key, timeout=timeout)
        if count >= settings.IMBI_TOKEN_FAILURE_LIMIT:
            cache.set(self._lock_key, time.time() + timeout, timeout=timeout)
            cache.delete(self._count_key)
