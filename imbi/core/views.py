"""``/healthz``: the database and, when configured, Redis. 200 when all pass, else 503.

Untrusted plugins this host cannot sandbox (``plugins_core.isolation.capabilities``) are
named under ``checks.plugins`` and make the status ``degraded`` (still 200)."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse


def _check_database() -> dict[str, object]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "vendor": connection.vendor}


def _check_redis() -> dict[str, object]:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()
    return {"ok": True}


def healthz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, dict[str, object]] = {}
    probes = {"database": _check_database}
    if settings.REDIS_URL:
        probes["redis"] = _check_redis
    for name, probe in probes.items():
        started = time.perf_counter()
        try:
            checks[name] = probe()
        except Exception as exc:  # a failing dependency is reported, never raised
            checks[name] = {"ok": False, "error": type(exc).__name__}
        checks[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    healthy = all(check["ok"] for check in checks.values())
    cannot_run = _plugins_that_cannot_run()
    if cannot_run:
        # named, never a 503: the process serves everything else, and an orchestrator
        # would otherwise restart or drain every replica over one plugin
        checks["plugins"] = {"ok": False, "cannot_run_here": cannot_run}
    status = "ok" if healthy and not cannot_run else ("degraded" if healthy else "unavailable")
    return JsonResponse({"status": status, "checks": checks}, status=200 if healthy else 503)


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
