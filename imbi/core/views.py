"""Liveness and readiness probes (docs/operations.md, *Health checks*).

- ``/livez``: liveness. 200 whenever this process can run a request; it touches no
  dependency, so a database or Redis outage never makes an orchestrator restart a healthy
  process (restarting would not fix the dependency, and would pay start-up on every node).
- ``/readyz`` (and ``/healthz``, the same view): readiness. The **required** checks are the
  database and the encryption key check (``imbi.core.keycheck``): when one fails this node
  cannot serve correctly and answers 503 ``unavailable``. Redis is **optional**: the
  application degrades without it (cache misses, throttling per process, writes invalidate
  through the database), so a Redis outage answers 200 ``degraded`` and no load balancer pulls
  every node at once for it.

The Redis check honours the process's outage latch (``imbi.core.cache``): while Redis is
marked down it reports so without a network call, so a frozen Redis costs a probe at most one
``IMBI_REDIS_TIMEOUT``.

Untrusted plugins this host cannot sandbox (``plugins_core.isolation.capabilities``) are
named under ``checks.plugins`` and make the status ``degraded`` (still 200).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from .cache import latched, mark_down, mark_up

Check = dict[str, object]


def _check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        connection.close()  # the next request opens a fresh one
        raise
    return {"ok": True, "vendor": connection.vendor}


def _check_redis() -> Check:
    import redis

    location = settings.REDIS_URL  # the cache's LOCATION: they share the outage latch
    if latched(location):
        return {"ok": False, "error": "marked down (retrying)"}
    timeout = float(getattr(settings, "IMBI_REDIS_TIMEOUT", 0.5))
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError):
        mark_down(location)
        raise
    finally:
        client.close()
    mark_up(location)
    return {"ok": True}


def _check_keys() -> Check:
    from . import keycheck

    problem = keycheck.current_problem()
    if problem:
        return {"ok": False, "error": problem}
    return {"ok": True}


def livez(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def healthz(request: HttpRequest) -> JsonResponse:
    required: dict[str, Callable[[], Check]] = {"database": _check_database}
    optional: dict[str, Callable[[], Check]] = {}
    if settings.REDIS_URL:
        optional["redis"] = _check_redis
    checks: dict[str, Check] = {}
    for name, probe in {**required, **optional}.items():
        started = time.perf_counter()
        try:
            checks[name] = probe()
        except Exception as exc:  # a failing dependency is reported, never raised
            checks[name] = {"ok": False, "error": type(exc).__name__}
        checks[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    if checks["database"]["ok"]:  # the key check reads the database
        started = time.perf_counter()
        try:
            checks["keys"] = _check_keys()
        except Exception as exc:
            checks["keys"] = {"ok": False, "error": type(exc).__name__}
        checks["keys"]["ms"] = round((time.perf_counter() - started) * 1000, 1)
        required["keys"] = _check_keys
    cannot_run = _plugins_that_cannot_run()
    if cannot_run:
        # named, never a 503: the process serves everything else, and an orchestrator
        # would otherwise restart or drain every replica over one plugin
        checks["plugins"] = {"ok": False, "cannot_run_here": cannot_run}
    if not all(checks[name]["ok"] for name in required if name in checks):
        status, code = "unavailable", 503
    elif not all(check["ok"] for check in checks.values()):
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    for name, check in checks.items():
        check["required"] = name in required
    return JsonResponse({"status": status, "checks": checks}, status=code)


def _plugins_that_cannot_run() -> dict[str, str]:
    """Untrusted plugins this host cannot sandbox: entry point -> "cannot run here: ..."."""
    from plugins_core import registry
    from plugins_core.isolation import capabilities

    try:
        entries = list(registry.current().entries.values())
        return {
            entry.name: capabilities.status_label(entry)
            for entry in entries
            if capabilities.entry_refusal(entry)
        }
    except Exception:  # the health view never fails on a probe
        return {}
