"""In a sandboxed runner, Logz.io is reachable only on the port its permission names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from imbi_plugin_logzio.search import LogzioLogs
from imbi_plugin_sdk import Credentials, LogQuery, UpstreamUnavailable
from imbi_plugin_sdk.testkit import make_context

from .conftest import TOKEN


def query() -> LogQuery:
    end = datetime.now(UTC)
    return LogQuery(start=end - timedelta(days=30), end=end, limit=5)


def plugin(url: str) -> LogzioLogs:
    context = make_context(service_settings={"base_url": url}, timeout=3.0)
    return LogzioLogs(context, Credentials(api_token=TOKEN))


def test_the_declared_port_answers_and_an_undeclared_one_is_refused(
    logzio: Any, run_isolated: Any
) -> None:
    port = int(logzio.url.rsplit(":", 1)[1])
    allowed = run_isolated(plugin(logzio.url), network_hosts=(f"127.0.0.1:{port}",))
    assert allowed.search(query()).entries  # the emulator answers through the sandbox
    served = len(logzio.bodies)
    other = port + 1 if port < 65535 else port - 1
    refused = run_isolated(plugin(logzio.url), network_hosts=(f"127.0.0.1:{other}",))
    with pytest.raises(UpstreamUnavailable):
        refused.search(query())  # the egress broker refused the connect: EACCES
    assert len(logzio.bodies) == served  # the request never reached the emulator
    # the same handler in-process (no sandbox) does reach it
    assert plugin(logzio.url).search(query()).entries
