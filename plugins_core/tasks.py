"""Celery tasks of the plugin framework (discovered by ``imbi.celery``).

``check_connections`` is the periodic connection test (scheduled by ``CELERY_BEAT_SCHEDULE``
every ``IMBI_CONNECTION_CHECK_INTERVAL`` seconds, run by the ``beat`` process in
docker/compose.yaml; eager in the embedded default). ``plugins_core.serving.health.check_all`` tests
every enabled plugin with its stored options and credentials through the runner, the same path
a tab request takes, records each result (so badges reflect a rotated or revoked credential
without anyone pressing a button) and logs one line per plugin, scrubbed of secrets.

``reconcile`` converges the node that runs it to the desired plugin distributions and reports
its ``NodeState`` (every node also reconciles on the broadcast nudge and at start-up, see
``plugins_core.distributions.control``); ``prune_environments`` deletes environments retired longer
than
the drain grace. Both are idempotent and safe to retry; beat schedules them.

**Delivery.** Every task here is idempotent, so all of them are acknowledged late
(``CELERY_TASK_ACKS_LATE``): a task whose worker process is killed is sent again
(``WorkerLostError``: after ``default_retry_delay``, 5 s, up to ``max_retries`` times), and
one that meets a database or Redis error retries with exponential backoff (``RETRY``).
What can still be lost, and why that is safe, is in docs/operations.md ("Periodic tasks").
"""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from imbi.celery import app
from plugins_core.distributions import control as _control
from plugins_core.distributions import environments
from plugins_core.serving import health

# Idempotent tasks: retried with exponential backoff (1 s, 2 s, 4 s, ... at most 60 s, with
# jitter) when the database or Redis fails, and after a lost worker; five retries at most.
RETRY: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "retry_on_worker_lost": True,
    "autoretry_for": (DatabaseError, RedisError, BrokerError),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 5,
    "default_retry_delay": 5,  # after a lost worker (Celery retries those at a fixed delay)
}


@app.task(name="plugins_core.tasks.check_connections", ignore_result=True, **RETRY)  # type: ignore[untyped-decorator]
def check_connections() -> dict[str, int]:
    """Test every enabled plugin's connection; record and log each outcome. Returns counts."""
    return health.check_all()


@app.task(name="plugins_core.tasks.reconcile", ignore_result=True, **RETRY)  # type: ignore[untyped-decorator]
def reconcile() -> dict[str, str]:
    """Converge this node's plugin environments to the desired state; report them."""
    return environments.reconcile()


@app.task(name="plugins_core.tasks.prune_environments", ignore_result=True, **RETRY)  # type: ignore[untyped-decorator]
def prune_environments() -> list[str]:
    """Delete this node's environments that were retired longer than the drain grace."""
    return environments.prune()


@app.task(name="plugins_core.tasks.nudge_nodes", ignore_result=True, **RETRY)  # type: ignore[untyped-decorator]
def nudge_nodes() -> None:
    """Periodic: ask every node to reconcile and prune (a node missed by a lost nudge too)."""
    from .models import RegistryState

    generation = RegistryState.objects.filter(pk=1).values_list("generation", flat=True).first()
    _control.nudge(int(generation or 0))


@app.task(name="plugins_core.tasks.registry_report", **RETRY)  # type: ignore[untyped-decorator]
def registry_report(pause: float = 0.0) -> dict[str, Any]:
    """What the process that runs this task serves: node, pid, generation, entries, the entry
    points still loading and whether this process's own thread imports them (an
    operator's view of one Celery child; ``pause`` keeps the child busy so a burst of these
    reaches every child)."""
    import os
    import time

    from plugins_core import registry
    from plugins_core.distributions import runtime

    if pause:
        time.sleep(min(float(pause), 5.0))
    snapshot = registry.current()
    return {
        "node": environments.node_id(),
        "pid": os.getpid(),
        "generation": runtime.serving(),
        "entries": {e.name: e.version for e in snapshot.loaded()},
        "loading": sorted(e.name for e in snapshot.loading()),
        "inspecting_here": registry.inspecting_here(),
    }
