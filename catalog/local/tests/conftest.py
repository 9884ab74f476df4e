"""Fixtures for imbi-plugin-local: every handler test runs in-process and isolated.

Isolated, the handler runs in a sandboxed runner (``run_isolated``, the runner production
uses) with no network. ``local-config``'s storage then goes through host requests: the
runner's ``context.storage`` asks the host, and the host side answers from the store the
test gave the handler's context (checked as in production: declared in the manifest, keys
and values bounded), so a test inspects the same ``MemoryKeyValueStore`` in both modes.

``local-logs`` reads files on the host. Isolated, its manifest's
``operator_path_settings=("directory",)`` lets the host grant the runner the service's
``directory`` setting read-only (Landlock), so every file-reading test runs in both modes;
a directory not granted (the binding's ``directory`` option) is refused by the kernel.
"""

from __future__ import annotations

from typing import Any

import pytest
from imbi_plugin_local.config import LocalConfiguration
from imbi_plugin_local.logs import LocalLogs
from imbi_plugin_sdk import Credentials, KeyValueStore, MemoryKeyValueStore
from imbi_plugin_sdk.testkit import make_context


@pytest.fixture(params=["in_process", "isolated"])
def runner_mode(request: Any) -> str:
    return str(request.param)


@pytest.fixture
def config_handler(runner_mode: str, run_isolated: Any) -> Any:
    """``make(store=None, **context)``: a LocalConfiguration on ``store`` (a fresh one by
    default; ``storage=None`` in ``context`` for a host that gives none)."""

    def make(store: KeyValueStore | None = None, **context: Any) -> LocalConfiguration:
        context.setdefault("storage", store if store is not None else MemoryKeyValueStore())
        handler = LocalConfiguration(make_context(**context), Credentials())
        if runner_mode == "isolated":
            return run_isolated(handler)  # type: ignore[no-any-return]
        return handler

    return make


@pytest.fixture
def logs_handler(runner_mode: str, run_isolated: Any) -> Any:
    """``make(directory, **context)``: a LocalLogs reading ``<directory>/<slug>.jsonl``."""

    def make(directory: Any = "", **context: Any) -> LocalLogs:
        context.setdefault("project_slug", "billing")
        context.setdefault("service_settings", {"directory": str(directory)})
        handler = LocalLogs(make_context(**context), Credentials())
        if runner_mode == "isolated":
            return run_isolated(handler)  # type: ignore[no-any-return]
        return handler

    return make
