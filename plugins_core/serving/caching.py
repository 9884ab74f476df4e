"""Result caching for plugins that declare ``hints.cacheable`` (with ``cache_ttl`` seconds).

Only results that hold no secret value are cached: key listings and *masked* values. A
revealed read always calls the plugin. Entries are keyed by the plugin, the project, the
organization's ``config_version`` (binding, option or credential changes) and a per-(plugin,
project) data generation that every write through the platform increments, so invalidation
is one ``INCR``, never a key scan. Changes made directly in the backend show after the TTL.
Values go through the SDK models' JSON form, so the Redis cache holds plain JSON.
While Redis is down, reads miss and call the plugin; an invalidation falls back to the
database (see ``invalidate``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache import cache

from imbi.core.cache import CacheUnavailable
from plugins_core.serving import invalidation
from plugins_core.serving.resolution import Resolved

T = TypeVar("T")


def _generation_key(resolved: Resolved) -> str:
    return f"imbi:tabgen:{resolved.plugin.pk}:{resolved.context.project_id}"


def _entry_key(resolved: Resolved, method: str, args: Any, version: int) -> str:
    digest = hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:24]
    generation = cache.get_or_set(_generation_key(resolved), 1, timeout=None)
    return (
        f"imbi:tab:{resolved.plugin.pk}:{resolved.context.project_id}:{version}:"
        f"{generation}:{method}:{digest}"
    )


def cached(
    resolved: Resolved,
    version: int,
    method: str,
    args: Any,
    produce: Callable[[], list[T]],
    dump: Callable[[T], Any],
    load: Callable[[Any], T],
) -> list[T]:
    """``produce()`` through the cache when the plugin's manifest allows it."""
    hints = resolved.manifest.hints
    if not hints.cacheable or hints.cache_ttl <= 0:
        return produce()
    key = _entry_key(resolved, method, args, version)
    hit = cache.get(key)
    if hit is not None:
        return [load(item) for item in hit]
    result = produce()
    cache.set(key, [dump(item) for item in result], timeout=hints.cache_ttl)
    return result


def invalidate(resolved: Resolved) -> str:
    """Forget cached results for this plugin and project (after a write).

    Returns ``"immediate"`` when the cache applied it, or ``"deferred"`` when the cache is
    unreachable: then the organization's ``config_version`` is bumped in the database
    instead (call this inside the write's transaction), which retires every cache entry of
    the organization, since entries are keyed by that version. Coarser, but nothing stale is
    served once Redis is back, and no retry queue is needed.
    """
    key = _generation_key(resolved)
    try:
        try:
            cache.incr(key)
        except ValueError:  # not set yet: nothing cached under it
            cache.set(key, 2, timeout=None)
    except CacheUnavailable:
        invalidation.bump(resolved.plugin.organization_id)
        return "deferred"
    return "immediate"
