"""Prometheus metrics and the ``/metrics`` endpoint (docs/operations.md, *Metrics*).

Every metric lives in this module's own ``REGISTRY`` (not the library's global one), so what
``/metrics`` shows is exactly what is documented. The values are **per process**: each
gunicorn worker and each Celery worker process counts its own calls, and Prometheus sums them
across the scraped targets (``sum by (plugin)``); a scrape through a load balancer reaches one
worker at a time, so scrape each worker's node and treat the counters as per-process series.

Labels are bounded: a plugin's slug, an organization's slug, a method name from the plugin
contract, a stable problem code. No label or value ever carries a secret, a credential, an
option value or the metrics token.

This module imports nothing from Django, so the isolation layer can count into it; the
endpoint is ``imbi.core.metrics_view``, closed unless ``IMBI_METRICS_TOKEN`` is set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
)

__all__ = [
    "CELERY_TASKS",
    "EGRESS_REFUSALS",
    "PLUGIN_BUSY",
    "PLUGIN_CALLS",
    "PLUGIN_CALL_SECONDS",
    "REGISTRY",
    "REGISTRY_GENERATION",
    "RUNNER_POOL_IDLE",
    "RUNNER_STARTS",
    "code_of",
    "observe_call",
    "watch_pool",
]

logger = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)

PLUGIN_CALLS = Counter(
    "imbi_plugin_calls",
    "Plugin calls by plugin, organization, method and outcome code ('ok' or a problem code).",
    ["plugin", "organization", "method", "code"],
    registry=REGISTRY,
)
PLUGIN_CALL_SECONDS = Histogram(
    "imbi_plugin_call_duration_seconds",
    "Wall time of plugin calls (any outcome) by plugin and organization.",
    ["plugin", "organization"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)
PLUGIN_BUSY = Counter(
    "imbi_plugin_busy_refusals",
    "Isolated calls refused with 503 plugin_busy (a concurrency limit was full).",
    ["plugin", "organization"],
    registry=REGISTRY,
)
EGRESS_REFUSALS = Counter(
    "imbi_plugin_egress_refusals",
    "Network connections an isolated plugin asked for and the egress broker refused.",
    ["plugin"],
    registry=REGISTRY,
)
RUNNER_STARTS = Counter(
    "imbi_plugin_runner_starts",
    "Isolated runner processes started (a cold start: no warm runner was idle).",
    ["plugin"],
    registry=REGISTRY,
)
RUNNER_POOL_IDLE = Gauge(
    "imbi_plugin_runner_pool_idle",
    "Warm isolated runners idle in this process's pool.",
    registry=REGISTRY,
)
REGISTRY_GENERATION = Gauge(
    "imbi_plugin_registry_generation",
    "Generation of this process's plugin registry snapshot (rises on every switch).",
    registry=REGISTRY,
)
CELERY_TASKS = Counter(
    "imbi_celery_tasks",
    "Celery task outcomes in this worker process: success, failure or retry.",
    ["task", "outcome"],
    registry=REGISTRY,
)

RUNNER_POOL_IDLE.set_function(lambda: 0.0)


def watch_pool(count: Callable[[], float]) -> None:
    """Report ``count()`` as the idle pool size at every scrape (the isolation layer's)."""
    RUNNER_POOL_IDLE.set_function(count)


def code_of(exc: BaseException | None) -> str:
    """The stable outcome label of a call: ``ok``, the problem code, or ``error``."""
    if exc is None:
        return "ok"
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code.replace("_", "").isalnum() and len(code) <= 64:
        return code
    return "error"


def observe_call(
    plugin: str, organization: str, method: str, seconds: float, exc: BaseException | None
) -> None:
    """Count one plugin call and its latency; never raises into the call."""
    try:
        PLUGIN_CALLS.labels(plugin, organization, method, code_of(exc)).inc()
        PLUGIN_CALL_SECONDS.labels(plugin, organization).observe(seconds)
    except Exception:  # a metric must never fail a plugin call
        logger.exception("plugin call metrics not recorded")


def _celery_outcome(outcome: str) -> Callable[..., None]:
    def receiver(sender: object = None, **_: object) -> None:
        name = getattr(sender, "name", None) or "unknown"
        CELERY_TASKS.labels(str(name), outcome).inc()

    return receiver


_on_success = _celery_outcome("success")
_on_failure = _celery_outcome("failure")
_on_retry = _celery_outcome("retry")


def connect_celery() -> None:
    """Count Celery task outcomes (called once from ``imbi.celery``)."""
    from celery.signals import task_failure, task_retry, task_success

    task_success.connect(_on_success, weak=False, dispatch_uid="imbi.metrics.success")
    task_failure.connect(_on_failure, weak=False, dispatch_uid="imbi.metrics.failure")
    task_retry.connect(_on_retry, weak=False, dispatch_uid="imbi.metrics.retry")
