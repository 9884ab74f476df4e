"""pytest plugin (``-p imbi.testing.pytest_plugin``): starts PostgreSQL and Redis for the run.

It wraps ``pytest_load_initial_conftests`` so the servers are up and ``DATABASE_URL`` /
``REDIS_URL`` are exported before pytest-django imports the settings. Runs without the
django plugin (``-p no:django``) start nothing.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

from .services import ServiceError, Services, start_all

_services: Services | None = None


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> Generator[None, Any, Any]:
    global _services
    wants_django = "no:django" not in " ".join(args)
    if wants_django and _services is None and not os.environ.get("PYTEST_XDIST_WORKER"):
        try:
            _services = start_all()
        except ServiceError as exc:
            raise pytest.UsageError(f"test services: {exc}") from None
        os.environ["DATABASE_URL"] = _services.database_url
        os.environ["REDIS_URL"] = _services.redis_url
    return (yield)


def current_services() -> Services | None:
    """The servers this run started (``None`` without the django plugin or under xdist)."""
    return _services


def pytest_unconfigure(config: pytest.Config) -> None:
    global _services
    if _services is not None:
        _services.stop()
        _services = None
