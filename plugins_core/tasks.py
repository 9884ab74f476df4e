"""Celery tasks of the plugin framework (discovered by ``imbi.celery``).

``check_connections`` is the periodic connection test (scheduled by
``CELERY_BEAT_SCHEDULE``, every ``IMBI_CONNECTION_CHECK_INTERVAL`` seconds, run by the
``beat`` process in docker/compose.yaml). It resolves each enabled plugin with its own
options and its service's credentials and runs ``test_connection`` through the runner, the
same path a tab request takes, then logs one line per plugin. Plugin messages are logged with
every credential and secret option value redacted; errors are logged by code and reason.

``reconcile`` converges the node that runs it to the desired plugin distributions and reports
its ``NodeState`` (every node also reconciles on the broadcast nudge and at start-up, see
``plugins_core.control``); ``prune_environments`` deletes environments retired longer than
the drain grace. Both are idempotent and safe to retry; beat schedules them.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.conf import settings
from imbi_plugin_sdk import PluginError, secret_values

from . import control as _control
from . import environments
from .models import Plugin
from .resolution import ResolutionError, resolve_plugin
from .runner import default_runner, redact
from .storage import DatabaseKeyValueStore

logger = logging.getLogger(__name__)


def check_plugin(plugin: Plugin) -> dict[str, Any]:
    """Run one plugin's connection test: ``{"ok", "code", "message"}``, secrets redacted."""
    try:
        resolved = resolve_plugin(
            plugin,
            timeout=settings.IMBI_PLUGIN_TIMEOUT,
            storage_factory=DatabaseKeyValueStore,
        )
    except ResolutionError as exc:
        return {"ok": False, "code": exc.code, "message": exc.detail}
    secrets = secret_values(resolved.manifest, resolved.context.options, resolved.credentials)
    try:
        result = default_runner().call(resolved, "test_connection")
    except (PluginError, ResolutionError) as exc:
        return {"ok": False, "code": exc.code, "message": redact(str(exc.detail), secrets)}
    return {
        "ok": bool(result.ok),
        "code": "ok" if result.ok else "connection_failed",
        "message": redact(str(result.message), secrets),
    }


@shared_task(name="plugins_core.tasks.check_connections", ignore_result=True)  # type: ignore[untyped-decorator]
def check_connections() -> dict[str, int]:
    """Test every enabled plugin's connection; log the outcome. Returns counts."""
    counts = {"ok": 0, "failed": 0}
    plugins = Plugin.objects.filter(enabled=True).select_related("organization")
    for plugin in plugins.order_by("organization__slug", "slug"):
        outcome = check_plugin(plugin)
        counts["ok" if outcome["ok"] else "failed"] += 1
        logger.log(
            logging.INFO if outcome["ok"] else logging.WARNING,
            "connection test %s/%s: %s %s",
            plugin.organization.slug,
            plugin.slug,
            outcome["code"],
            outcome["message"],
        )
    logger.info("connection tests: %(ok)d ok, %(failed)d failed", counts)
    return counts


@shared_task(name="plugins_core.tasks.reconcile", ignore_result=True)  # type: ignore[untyped-decorator]
def reconcile() -> dict[str, str]:
    """Converge this node's plugin environments to the desired state; report them."""
    return environments.reconcile()


@shared_task(name="plugins_core.tasks.prune_environments", ignore_result=True)  # type: ignore[untyped-decorator]
def prune_environments() -> list[str]:
    """Delete this node's environments that were retired longer than the drain grace."""
    return environments.prune()


@shared_task(name="plugins_core.tasks.nudge_nodes", ignore_result=True)  # type: ignore[untyped-decorator]
def nudge_nodes() -> None:
    """Periodic: ask every node to reconcile and prune (a node missed by a lost nudge too)."""
    from .models import RegistryState

    generation = RegistryState.objects.filter(pk=1).values_list("generation", flat=True).first()
    _control.nudge(int(generation or 0))


@shared_task(name="plugins_core.tasks.registry_report")  # type: ignore[untyped-decorator]
def registry_report(pause: float = 0.0) -> dict[str, Any]:
    """What the process that runs this task serves: node, pid, generation and entries (an
    operator's view of one Celery child; ``pause`` keeps the child busy so a burst of these
    reaches every child)."""
    import os
    import time

    from . import registry, runtime

    if pause:
        time.sleep(min(float(pause), 5.0))
    snapshot = registry.current()
    return {
        "node": environments.node_id(),
        "pid": os.getpid(),
        "generation": runtime.serving(),
        "entries": {e.name: e.version for e in snapshot.loaded()},
    }
