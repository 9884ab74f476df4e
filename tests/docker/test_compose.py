"""The compose file and the settings agree: same variables, web + worker + postgres + redis."""

from __future__ import annotations

from pathlib import Path

import yaml

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def test_compose_defines_the_production_shape() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"web", "worker", "postgres", "redis"}
    for name in ("web", "worker"):
        env = services[name]["environment"]
        assert env["DJANGO_SETTINGS_MODULE"] == "imbi.settings.production"
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["REDIS_URL"].startswith("redis://redis:")
        assert set(services[name]["depends_on"]) == {"postgres", "redis"}
    assert "gunicorn imbi.wsgi:application" in " ".join(services["web"]["command"])
    assert services["worker"]["command"][:3] == ["celery", "-A", "imbi.celery"]


def test_env_example_lists_the_required_secrets() -> None:
    example = (DOCKER / "env.example").read_text()
    assert "SECRET_KEY=" in example and "IMBI_ENCRYPTION_KEYS=" in example


def test_dockerfile_serves_with_gunicorn_under_production_settings() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert "imbi.settings.production" in text
    assert '"gunicorn", "imbi.wsgi:application"' in text
