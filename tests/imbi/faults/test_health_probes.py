"""Fault 2 of issue 21: liveness and readiness on a real gunicorn.

- Redis killed or frozen: ``/healthz`` (= ``/readyz``) answers 200 ``degraded`` (no load
  balancer pulls every node at once for a dependency the app survives), within one short
  Redis timeout, and the next probe answers at once (the process's outage latch).
- PostgreSQL down: readiness 503 ``unavailable``; liveness (``/livez``) stays 200, so an
  orchestrator does not restart processes that a restart cannot fix.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from imbi.testing.outages import postgres_down, redis_frozen, redis_killed

from .conftest import Web


@pytest.mark.parametrize("outage", [redis_killed, redis_frozen], ids=["killed", "frozen"])
def test_redis_down_is_degraded_not_unready(web_server: Callable[..., Web], outage: Any) -> None:
    web = web_server()
    healthy = web.get("/healthz")
    assert healthy.status_code == 200, healthy.text
    assert healthy.json()["status"] == "ok"
    assert healthy.json()["checks"]["keys"]["ok"] is True
    with outage():
        started = time.monotonic()
        first = web.get("/readyz")
        first_seconds = time.monotonic() - started
        started = time.monotonic()
        second = web.get("/healthz")
        second_seconds = time.monotonic() - started
        live = web.get("/livez")
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "degraded"
    assert first.json()["checks"]["redis"]["ok"] is False
    assert first.json()["checks"]["redis"]["required"] is False
    assert first.json()["checks"]["database"]["ok"] is True
    assert second.json()["checks"]["redis"]["error"] == "marked down (retrying)"
    assert first_seconds < 2.0, first_seconds  # one 0.5 s timeout at most
    assert second_seconds < 1.0, second_seconds  # no timeout at all
    assert live.status_code == 200
    time.sleep(5.5)  # IMBI_REDIS_RETRY_SECONDS: the next probe tries Redis again
    again = web.get("/healthz")
    assert again.status_code == 200
    assert again.json()["status"] == "ok", again.text


def test_postgres_down_is_unready_but_alive(web_server: Callable[..., Web]) -> None:
    web = web_server()
    assert web.get("/readyz").status_code == 200
    with postgres_down():
        ready = web.get("/readyz")
        live = web.get("/livez")
    assert ready.status_code == 503, ready.text
    assert ready.json()["status"] == "unavailable"
    assert ready.json()["checks"]["database"] == {
        "ok": False,
        "error": "OperationalError",
        "required": True,
        "ms": ready.json()["checks"]["database"]["ms"],
    }
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
    deadline = time.monotonic() + 15
    while web.get("/readyz").status_code != 200:  # it recovers by itself
        assert time.monotonic() < deadline, web.logs()
        time.sleep(0.2)
