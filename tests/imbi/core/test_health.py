"""/healthz reports the database and Redis."""

from __future__ import annotations

from typing import Any

from django.test import Client, override_settings

from imbi.testing.services import free_port


def test_healthz_reports_database_and_redis(client: Client, db: Any, settings: Any) -> None:
    assert settings.REDIS_URL  # the harness started a real Redis
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["database"]["vendor"] == "postgresql"
    assert body["checks"]["redis"]["ok"] is True


def test_healthz_is_degraded_not_503_when_redis_is_down(client: Client, db: Any) -> None:
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["redis"] == {
        "ok": False,
        "error": "ConnectionError",
        "required": False,
        "ms": response.json()["checks"]["redis"]["ms"],
    }


def test_healthz_omits_redis_when_not_configured(client: Client, db: Any) -> None:
    with override_settings(REDIS_URL=""):
        body = client.get("/healthz").json()
    assert set(body["checks"]) == {"database", "keys"}
