"""``/``: the landing page a new user opens first (the URL ``make run`` prints).

Links to the projects, the admin, the API root and its docs, and shows the health of the
install: the database, the plugin registry (loaded and failing entry points) and, for a
signed-in user, the health badges of the plugins in their organizations
(``plugins_core.serving.health``). No inline script or style (CSP).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def _database() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # reported on the page, never raised
        return False
    return True


def _plugins(request: HttpRequest) -> dict[str, Any]:
    from plugins_core import registry
    from plugins_core.models import Plugin
    from plugins_core.serving import health

    snapshot = registry.current()
    entries = list(snapshot.entries.values())
    failing = [e for e in entries if not e.ok]
    badges: Counter[str] = Counter()
    user = request.user
    if user.is_authenticated:
        rows = Plugin.objects.all()
        if not user.is_superuser:
            rows = rows.filter(organization__memberships__user_id=user.pk)
        for plugin in health.with_health(rows):
            badges[health.badge(plugin, snapshot).status] += 1
    return {
        "loaded": len(entries) - len(failing),
        "failing": failing,
        "badges": sorted(badges.items()),
        "not_ok": sum(n for status, n in badges.items() if status != "ok"),
    }


def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "home.html",
        {"database_ok": _database(), **_plugins(request)},
    )
