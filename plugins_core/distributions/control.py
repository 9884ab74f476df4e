"""The Celery side of the plugin runtime: the broadcast nudge and the process hooks.

- ``nudge(generation)``: ``app.control.broadcast("imbi_plugins_reconcile")`` after an
  install, upgrade or remove. Every running Celery worker's main process receives it and
  reconciles its node (builds environments, reports ``NodeState``). A worker that is down, or
  a message that is lost, misses it; that is fine (see ``plugins_core.distributions.runtime``). The
  documented ``Broadcast`` queue route is not used: on Redis it silently drops messages.
- ``task_prerun``: every task, in every pool child, first checks the registry generation.
- ``worker_init``: a worker converges its node before it takes tasks.

Imported by ``plugins_core.tasks`` (so every worker registers the control command); web
processes never import Celery for this (the nudge imports it lazily).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery.signals import task_prerun, worker_init
from celery.worker.control import control_command

logger = logging.getLogger("imbi.plugins.control")

COMMAND = "imbi_plugins_reconcile"


def nudge(generation: int) -> None:
    """Ask every running worker to reconcile its node now. Never raises."""
    from django.conf import settings

    if settings.CELERY_TASK_ALWAYS_EAGER or not settings.IMBI_PLUGIN_BROADCAST:
        return  # one process and no broker, or the operator turned the nudge off
    try:
        from imbi.celery import app

        app.control.broadcast(COMMAND, arguments={"generation": generation})
    except Exception as exc:  # the generation check converges every process anyway
        logger.warning("reconcile broadcast for generation %s failed: %s", generation, exc)


def _reconcile_in_background(generation: Any) -> None:
    from plugins_core.distributions import environments

    def run() -> None:
        try:
            environments.reconcile()
            environments.prune()
        except Exception:
            logger.exception("reconcile for generation %s failed", generation)
        finally:
            from django.db import connection

            connection.close()

    threading.Thread(target=run, name="imbi-reconcile", daemon=True).start()


@control_command(args=[("generation", int)], signature="[generation]")  # type: ignore[untyped-decorator]
def imbi_plugins_reconcile(state: Any, generation: int = 0) -> dict[str, Any]:
    """Remote control: reconcile this node (in a thread, so the worker keeps consuming)."""
    _reconcile_in_background(generation)
    return {"ok": True, "generation": generation}


@task_prerun.connect  # type: ignore[untyped-decorator]
def _check_generation(**_: Any) -> None:
    from plugins_core.distributions import runtime

    try:
        runtime.refresh()
    except Exception:
        logger.exception("registry generation check failed before a task")


@worker_init.connect  # type: ignore[untyped-decorator]
def _converge(**_: Any) -> None:
    from django.db import connection

    from plugins_core.distributions import runtime

    runtime.converge_on_start()
    connection.close()  # pool children must not share the main process's connection
