"""The Redis cache backend with an outage policy: a cache is an optimisation, never a failure.

- Reads (``get``, ``get_many``, ``has_key``) answer a miss while Redis is unreachable.
- Fills (``set``, ``add``, ``set_many``, ``touch``) are skipped.
- Invalidations (``incr``, ``decr``, ``delete``, ``delete_many``, ``clear``) raise
  ``CacheUnavailable``: silently dropping one would serve stale data once Redis is back, so
  the caller must fall back to the database (``plugins_core.serving.caching.invalidate`` does).

**The outage latch.** Connection and socket timeouts come from the cache ``OPTIONS``
(``IMBI_REDIS_TIMEOUT``, half a second). A frozen Redis (a paused process, a black-holed
network) answers nothing, so every call would wait that long; after the first connection
error or timeout the process marks this Redis *down* for ``IMBI_REDIS_RETRY_SECONDS`` and every
cache call in that window fails at once, without touching the network. The first call after
the window tries again (one timeout if Redis is still gone, which re-arms the latch). So an
outage costs a process at most one short timeout per retry interval, never one per call.
``redis_available()`` tells other Redis users (``/healthz``) whether the latch is open.

Log lines name the operation and the error type, never the URL (it may hold a password).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)
T = TypeVar("T")


class CacheUnavailable(Exception):
    """The cache could not apply an invalidation; fall back to a database-side one."""


class RedisLatched(RedisConnectionError):
    """Redis failed recently in this process; the call was not attempted."""


# location -> monotonic time until which Redis counts as down in this process. A process-wide
# dict (Django gives each thread its own cache object) guarded by a lock.
_down_until: dict[str, float] = {}
_lock = threading.Lock()


def retry_seconds() -> float:
    return float(getattr(settings, "IMBI_REDIS_RETRY_SECONDS", 5.0))


def latched(location: str) -> bool:
    """Redis at ``location`` failed less than ``IMBI_REDIS_RETRY_SECONDS`` ago."""
    with _lock:
        return _down_until.get(location, 0.0) > time.monotonic()


def mark_down(location: str) -> None:
    with _lock:
        first = _down_until.get(location, 0.0) <= time.monotonic()
        _down_until[location] = time.monotonic() + retry_seconds()
    if first:
        logger.warning(
            "Redis unavailable: cache calls fail fast for %.0f s before the next try",
            retry_seconds(),
        )


def mark_up(location: str) -> None:
    with _lock:
        was_down = _down_until.pop(location, None) is not None
    if was_down:
        logger.info("Redis reachable again: cache calls resumed")


def redis_available(location: str) -> bool:
    """False while this process's latch for ``location`` is set (no network call)."""
    return not latched(location)


class ResilientRedisCache(RedisCache):
    def _location(self) -> str:
        servers: list[str] = getattr(self, "_servers", [])
        return str(servers[0]) if servers else ""

    def _call(self, operation: str, call: Callable[[], T]) -> T:
        """Run ``call`` unless the latch is set; a connection failure sets it."""
        location = self._location()
        if latched(location):
            raise RedisLatched("Redis marked down in this process")
        try:
            result = call()
        except (RedisConnectionError, RedisTimeoutError):
            mark_down(location)
            raise
        if location in _down_until:
            mark_up(location)
        return result

    def _degraded(self, operation: str, exc: Exception) -> None:
        if not isinstance(exc, RedisLatched):  # one line per outage, not per call
            logger.warning(
                "cache %s skipped: Redis unavailable (%s)", operation, type(exc).__name__
            )

    def _invalidation_failed(self, operation: str, exc: Exception) -> CacheUnavailable:
        logger.warning("cache %s failed: Redis unavailable (%s)", operation, type(exc).__name__)
        return CacheUnavailable(f"cache {operation} failed: Redis unavailable")

    # --- reads: a miss --------------------------------------------------------------------

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        try:
            return self._call(
                "get", lambda: super(ResilientRedisCache, self).get(key, default, version)
            )
        except RedisError as exc:
            self._degraded("get", exc)
            return default

    def get_many(self, keys: Any, version: int | None = None) -> dict[Any, Any]:
        try:
            return self._call(
                "get_many", lambda: super(ResilientRedisCache, self).get_many(keys, version)
            )
        except RedisError as exc:
            self._degraded("get_many", exc)
            return {}

    def has_key(self, key: Any, version: int | None = None) -> bool:
        try:
            return self._call(
                "has_key", lambda: super(ResilientRedisCache, self).has_key(key, version)
            )
        except RedisError as exc:
            self._degraded("has_key", exc)
            return False

    # --- fills: skipped -------------------------------------------------------------------

    def set(self, key: Any, value: Any, timeout: Any = 300, version: int | None = None) -> None:
        try:
            self._call(
                "set", lambda: super(ResilientRedisCache, self).set(key, value, timeout, version)
            )
        except RedisError as exc:
            self._degraded("set", exc)

    def add(self, key: Any, value: Any, timeout: Any = 300, version: int | None = None) -> bool:
        try:
            return self._call(
                "add", lambda: super(ResilientRedisCache, self).add(key, value, timeout, version)
            )
        except RedisError as exc:
            self._degraded("add", exc)
            return False

    def set_many(self, data: Any, timeout: Any = 300, version: int | None = None) -> list[Any]:
        try:
            return self._call(
                "set_many",
                lambda: super(ResilientRedisCache, self).set_many(data, timeout, version),
            )
        except RedisError as exc:
            self._degraded("set_many", exc)
            return list(data)

    def touch(self, key: Any, timeout: Any = 300, version: int | None = None) -> bool:
        try:
            return self._call(
                "touch", lambda: super(ResilientRedisCache, self).touch(key, timeout, version)
            )
        except RedisError as exc:
            self._degraded("touch", exc)
            return False

    # --- invalidations: the caller must know ---------------------------------------------

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        try:
            return self._call(
                "incr", lambda: super(ResilientRedisCache, self).incr(key, delta, version)
            )
        except RedisError as exc:
            raise self._invalidation_failed("incr", exc) from None

    def decr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        try:
            return self._call(
                "decr", lambda: super(ResilientRedisCache, self).decr(key, delta, version)
            )
        except RedisError as exc:
            raise self._invalidation_failed("decr", exc) from None

    def delete(self, key: Any, version: int | None = None) -> bool:
        try:
            return self._call(
                "delete", lambda: super(ResilientRedisCache, self).delete(key, version)
            )
        except RedisError as exc:
            raise self._invalidation_failed("delete", exc) from None

    def delete_many(self, keys: Any, version: int | None = None) -> None:
        try:
            self._call(
                "delete_many", lambda: super(ResilientRedisCache, self).delete_many(keys, version)
            )
        except RedisError as exc:
            raise self._invalidation_failed("delete_many", exc) from None

    def clear(self) -> None:
        try:
            self._call("clear", lambda: super(ResilientRedisCache, self).clear())
        except RedisError as exc:
            raise self._invalidation_failed("clear", exc) from None
