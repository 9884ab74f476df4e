"""Every process's view of runtime-installed distributions: the generation check and switch.

Each web request (``GenerationMiddleware``) and each Celery task (``task_prerun``) calls
``refresh()`` first. It compares the desired registry generation (one Redis ``GET`` through
the cache; a database read only when the cache misses, and at most every
``IMBI_PLUGIN_GENERATION_CHECK`` seconds) with the one this process serves. When it is stale
it reads ``InstalledDistribution`` once, makes sure each version's environment exists on this
node (``environments.ensure``), and swaps in a new registry snapshot with those entries
(``registry.set_managed``). Work that already holds the previous snapshot finishes on it;
runners of versions that left the snapshot drain (``isolation.host.retire``).

So a lost broadcast never leaves a process behind: the broadcast only makes the node build
environments early; the generation decides what every process serves.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from imbi_plugin_sdk import ManifestError, PluginManifest, is_compatible

from plugins_core import registry
from plugins_core.distributions import environments, integrity

logger = logging.getLogger("imbi.plugins.runtime")

CACHE_KEY = "plugins:registry-generation"

_lock = threading.Lock()
_serving: int | None = 0  # the desired generation this process's snapshot reflects
_checked_at = time.monotonic()  # a process serves what it loaded at start-up first


def desired_generation() -> int:
    """The global generation: the cache when it answers, else the database (and re-cache).

    The cached value expires after ``IMBI_PLUGIN_GENERATION_TTL`` seconds, so a publish that
    failed (Redis down at that moment) delays the switch by at most that long."""
    value = cache.get(CACHE_KEY)
    if isinstance(value, int):
        return value
    from plugins_core.models import RegistryState

    found = RegistryState.objects.filter(pk=1).values_list("generation", flat=True).first()
    generation = int(found or 0)
    cache.set(CACHE_KEY, generation, timeout=float(settings.IMBI_PLUGIN_GENERATION_TTL))
    return generation


def publish(generation: int) -> None:
    """Record ``generation`` in the cache (after the commit that made it)."""
    try:
        cache.set(CACHE_KEY, generation, timeout=float(settings.IMBI_PLUGIN_GENERATION_TTL))
    except Exception:  # Redis down: processes fall back to the database on the next miss
        logger.warning("could not publish registry generation %s to the cache", generation)


def serving() -> int | None:
    return _serving


def managed_entries(
    row: Any,
    env: environments.Env | None,
    reason: str = "",
    refusal: tuple[registry.Status, str] | None = None,
) -> list[Any]:
    """Registry entries of one ``InstalledDistribution`` (manifests as inspected at install).

    ``refusal`` (blocklisted, or a modified environment: ``integrity.runtime_refusal``) is
    shown on every entry, and no runner ever starts from that environment."""
    entries = []
    for name, info in sorted((row.entries or {}).items()):
        target = str(info.get("target", ""))
        status, detail, manifest = registry.Status.LOADED, "", None
        try:
            manifest = PluginManifest.from_dict(info.get("manifest") or {})
        except (ManifestError, TypeError, ValueError) as exc:
            status, detail = registry.Status.INVALID, f"invalid manifest: {exc}"
        if manifest is not None:
            ok, why = is_compatible(manifest.api, registry.HOST_API_VERSION)
            if not ok:
                status, detail = registry.Status.INCOMPATIBLE, why
        if env is None:
            status, detail = registry.Status.IMPORT_FAILED, reason or "environment missing"
        elif refusal is not None:
            status, detail = refusal
        entries.append(
            registry.Entry(
                name,
                target,
                row.name,
                row.version,
                status,
                detail,
                manifest=manifest,
                isolated=True,
                env=str(env.path) if env else "",
            )
        )
    return entries


def switch(generation: int | None = None) -> registry.Snapshot:
    """Serve the desired state now: build the snapshot of every installed distribution."""
    global _serving
    from plugins_core.models import InstalledDistribution

    with _lock:
        target = desired_generation() if generation is None else generation
        entries: list[Any] = []
        rules = integrity.current_block_rules()
        for row in InstalledDistribution.objects.all():
            refusal = None
            try:
                env: environments.Env | None = environments.ensure(row)
                reason = ""
            except Exception as exc:  # the entries are shown import_failed with the reason
                env, reason = None, f"environment not available on this node: {exc}"[:500]
                logger.error("plugin %s %s: %s", row.name, row.version, reason)
            if env is not None:
                refusal = integrity.runtime_refusal(row, env.path, rules)
                if refusal is not None:
                    logger.error("plugin %s %s refused: %s", row.name, row.version, refusal[1])
            entries.extend(managed_entries(row, env, reason, refusal))
        snapshot = registry.set_managed(entries)
        _serving = target
    live = {(e.distribution, e.version) for e in snapshot.entries.values()}
    from plugins_core.isolation import host

    drained = host.retire(live)
    logger.info(
        "pid %s serves registry generation %s (%d runtime entries, %d runners drained)",
        os.getpid(),
        target,
        len(entries),
        drained,
    )
    return snapshot


def refresh(*, force: bool = False) -> bool:
    """Switch to the desired generation if this process is behind; ``True`` if it switched."""
    global _checked_at
    now = time.monotonic()
    if not force and now - _checked_at < float(settings.IMBI_PLUGIN_GENERATION_CHECK):
        return False
    _checked_at = now
    generation = desired_generation()
    if generation == _serving and not force:
        return False
    switch(generation)
    return True


def converge_on_start(*, report: bool = True) -> None:
    """A process's start-up: build what the desired state needs (and, with ``report``,
    record the node's state), then serve it."""
    try:
        if report:
            environments.reconcile()
        refresh(force=True)
    except Exception:
        logger.exception("plugin runtime could not converge at start-up; serving without it")


class GenerationMiddleware:
    """Checks the registry generation before each request (see the module docstring).

    With ``IMBI_WORKER_HEADER`` on, answers carry ``Imbi-Worker: <node>:<pid>`` and
    ``Imbi-Registry-Generation`` (for operators and the multi-node tests)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            refresh()
        except Exception:  # never fail a request over the check: serve the last snapshot
            logger.exception("registry generation check failed")
        response = self.get_response(request)
        if settings.IMBI_WORKER_HEADER:
            response["Imbi-Worker"] = f"{environments.node_id()}:{os.getpid()}"
            response["Imbi-Registry-Generation"] = str(_serving)
        return response
