"""pytest plugin (``-p imbi.testing.pytest_plugin``): starts PostgreSQL and Redis for the run.

It wraps ``pytest_load_initial_conftests`` so the servers are up and ``DATABASE_URL`` /
``REDIS_URL`` are exported before pytest-django imports the settings. Runs without the
django plugin (``-p no:django``) start nothing.

Under pytest-xdist (``-n N``) every worker starts servers of its own (a few seconds, in
parallel) and the controller, which runs no test, starts none: no test can see another
worker's data, and a test that pauses or floods its Redis or drops databases affects only
its own worker. The servers stop when the process ends, however it ends (see
``imbi.testing.services``).

``IMBI_PLUGIN_IMPORT_TIMEOUT`` defaults to 2 (the value ``imbi.settings.test`` sets) in the
environment every subprocess inherits: the test virtualenv carries a plugin that hangs at
import on purpose (tests/hostile_plugin), and each dev or production Django process a test
starts would otherwise wait the documented 10 s default for it whenever it builds the
registry (``manage.py check`` twice in test_servers, ``makemigrations --check``, ...). A test
that sets the variable itself keeps its value.

A test marked ``@pytest.mark.alone`` changes something every test shares (it installs into
the platform's virtualenv, which every registry rebuild reads): under xdist it runs while no
other worker runs a test (a readers-writer lock on files in the virtualenv; the writer
waits at a turnstile, so it is not starved).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from .services import ServiceError, Services, start_all

_services: Services | None = None


def _distributes(early_config: pytest.Config) -> bool:
    """This process is an xdist controller that will hand every test to workers."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return False
    options = early_config.known_args_namespace
    workers = getattr(options, "numprocesses", None)  # None: xdist is not loaded
    if not workers or getattr(options, "usepdb", False):
        return False  # -n 0, or --pdb (which turns -n auto off)
    return not getattr(options, "collectonly", False)


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> Generator[None, Any, Any]:
    global _services
    os.environ.setdefault("IMBI_PLUGIN_IMPORT_TIMEOUT", "2")
    wants_django = "no:django" not in " ".join(args)
    if wants_django and _services is None and not _distributes(early_config):
        try:
            _services = start_all()
        except ServiceError as exc:
            raise pytest.UsageError(f"test services: {exc}") from None
        os.environ["DATABASE_URL"] = _services.database_url
        os.environ["REDIS_URL"] = _services.redis_url
    return (yield)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """A controller that started no servers must really hand the tests to workers."""
    config.addinivalue_line(
        "markers", "alone: changes what every test shares (the virtualenv); runs alone"
    )
    if _services is not None or "no:django" in " ".join(config.invocation_params.args):
        return
    if os.environ.get("PYTEST_XDIST_WORKER") or config.option.collectonly:
        return
    if not config.getoption("tx", None) or config.getoption("dist", "no") == "no":
        raise pytest.UsageError("test services: not started (run with -n 0 or without -n)")


@contextlib.contextmanager
def _shared_environment(*, exclusive: bool) -> Iterator[None]:
    base = Path(sys.prefix)
    with (
        open(base / ".imbi-tests.turnstile", "a") as gate,
        open(base / ".imbi-tests.lock", "a") as lock,
    ):
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        finally:
            if not exclusive:
                fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            if exclusive:
                fcntl.flock(gate, fcntl.LOCK_UN)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return (yield)
    with _shared_environment(exclusive=item.get_closest_marker("alone") is not None):
        return (yield)


def current_services() -> Services | None:
    """The servers this process started (``None`` without the django plugin, and in an
    xdist controller)."""
    return _services


def pytest_unconfigure(config: pytest.Config) -> None:
    global _services
    if _services is not None:
        _services.stop()
        _services = None
