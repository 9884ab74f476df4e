"""Root conftest: shared fixtures live in tests/conftest.py; this file only anchors rootdir."""

from typing import Any

import pytest


@pytest.fixture
def run_isolated() -> Any:
    """``isolated(handler, network_hosts=...)``: a handler whose calls run in a sandboxed
    runner (``plugins_core.isolation.testing``); catalog tests use it without importing the
    host."""
    from plugins_core.isolation.testing import isolated

    return isolated
