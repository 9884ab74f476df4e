"""In a sandboxed runner, GitHub is reachable only on the port its permission names."""

from __future__ import annotations

from typing import Any

import pytest
from imbi_plugin_github.actions import GitHubActionsConfiguration
from imbi_plugin_sdk import Credentials, UpstreamUnavailable
from imbi_plugin_sdk.testkit import make_context

from .conftest import REPOSITORY, TOKEN


def plugin(url: str) -> GitHubActionsConfiguration:
    context = make_context(
        service_settings={"base_url": url}, search_template=REPOSITORY, timeout=3.0
    )
    return GitHubActionsConfiguration(context, Credentials(token=TOKEN))


def test_the_declared_port_answers_and_an_undeclared_one_is_refused(
    github: Any, run_isolated: Any
) -> None:
    github.add_variable(REPOSITORY, "REGION", "eu-west-1")
    port = int(github.url.rsplit(":", 1)[1])
    allowed = run_isolated(plugin(github.url), network_hosts=(f"127.0.0.1:{port}",))
    assert [k.key for k in allowed.list_keys()] == ["REGION"]  # through the sandbox
    served = len(github.log)
    other = port + 1 if port < 65535 else port - 1
    refused = run_isolated(plugin(github.url), network_hosts=(f"127.0.0.1:{other}",))
    with pytest.raises(UpstreamUnavailable):
        refused.list_keys()  # Landlock refused the connect: EACCES
    assert len(github.log) == served  # the request never reached the emulator
    # the same handler in-process (no sandbox) does reach it
    assert [k.key for k in plugin(github.url).list_keys()] == ["REGION"]
