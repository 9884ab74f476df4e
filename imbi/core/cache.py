"""The Redis cache backend with an outage policy: a cache is an optimisation, never a failure.

- Reads (``get``, ``get_many``, ``has_key``) answer a miss while Redis is unreachable.
- Fills (``set``, ``add``, ``set_many``, ``touch``) are skipped.
- Invalidations (``incr``, ``decr``, ``delete``, ``delete_many``, ``clear``) raise
  ``CacheUnavailable``: silently dropping one would serve stale data once Redis is back, so
  the caller must fall back to the database (``plugins_core.serving.caching.invalidate`` does).

Connection and socket timeouts come from the cache ``OPTIONS`` (one second in the settings),
so an outage costs a request at most that long per cache call. Log lines name the
operation and the error type, never the URL (it may hold a password).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


class CacheUnavailable(Exception):
    """The cache could not apply an invalidation; fall back to a database-side one."""


class ResilientRedisCache(RedisCache):
    def _degraded(self, operation: str, exc: Exception) -> None:
        logger.warning("cache %s skipped: Redis unavailable (%s)", operation, type(exc).__name__)

    def _invalidation_failed(self, operation: str, exc: Exception) -> CacheUnavailable:
        logger.warning("cache %s failed: Redis unavailable (%s)", operation, type(exc).__name__)
        return CacheUnavailable(f"cache {operation} failed: Redis unavailable")

    # --- reads: a miss --------------------------------------------------------------------

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        try:
            return super().get(key, default, version)
        except RedisError as exc:
            self._degraded("get", exc)
            return default

    def get_many(self, keys: Any, version: int | None = None) -> dict[Any, Any]:
        try:
            return super().get_many(keys, version)
        except RedisError as exc:
            self._degraded("get_many", exc)
            return {}

    def has_key(self, key: Any, version: int | None = None) -> bool:
        try:
            return super().has_key(key, version)
        except RedisError as exc:
            self._degraded("has_key", exc)
            return False

    # --- fills: skipped -------------------------------------------------------------------

    def set(self, key: Any, value: Any, timeout: Any = 300, version: int | None = None) -> None:
        try:
            super().set(key, value, timeout, version)
        except RedisError as exc:
            self._degraded("set", exc)

    def add(self, key: Any, value: Any, timeout: Any = 300, version: int | None = None) -> bool:
        try:
            return super().add(key, value, timeout, version)
        except RedisError as exc:
            self._degraded("add", exc)
            return False

    def set_many(self, data: Any, timeout: Any = 300, version: int | None = None) -> list[Any]:
        try:
            return super().set_many(data, timeout, version)
        except RedisError as exc:
            self._degraded("set_many", exc)
            return list(data)

    def touch(self, key: Any, timeout: Any = 300, version: int | None = None) -> bool:
        try:
            return super().touch(key, timeout, version)
        except RedisError as exc:
            self._degraded("touch", exc)
            return False

    # --- invalidations: the caller must know ---------------------------------------------

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        try:
            return super().incr(key, delta, version)
        except RedisError as exc:
            raise self._invalidation_failed("incr", exc) from None

    def decr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        try:
            return super().decr(key, delta, version)
        except RedisError as exc:
            raise self._invalidation_failed("decr", exc) from None

    def delete(self, key: Any, version: int | None = None) -> bool:
        try:
            return super().delete(key, version)
        except RedisError as exc:
            raise self._invalidation_failed("delete", exc) from None

    def delete_many(self, keys: Any, version: int | None = None) -> None:
        try:
            super().delete_many(keys, version)
        except RedisError as exc:
            raise self._invalidation_failed("delete_many", exc) from None

    def clear(self) -> None:
        try:
            super().clear()
        except RedisError as exc:
            raise self._invalidation_failed("clear", exc) from None
