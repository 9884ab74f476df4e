"""In a sandboxed runner, AWS (moto) is reachable only on the port its permission names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from imbi_plugin_aws.ssm import SSMConfiguration
from imbi_plugin_sdk import Credentials, UpstreamUnavailable
from imbi_plugin_sdk.testkit import make_context

from .conftest import REGION


def plugin(url: str, path: str, credentials: Credentials) -> SSMConfiguration:
    context = make_context(
        service_settings={"region": REGION, "base_url": url}, search_template=path, timeout=3.0
    )
    return SSMConfiguration(context, credentials)


def test_the_declared_port_answers_and_an_undeclared_one_is_refused(
    moto_url: str,
    credentials: Credentials,
    boto: Callable[[str], Any],
    unique: str,
    run_isolated: Any,
) -> None:
    path = f"/imbi-isolated/{unique}/"
    boto("ssm").put_parameter(Name=f"{path}REGION", Value="eu-west-1", Type="String")
    port = urlsplit(moto_url).port
    assert port is not None
    handler = plugin(moto_url, path, credentials)
    allowed = run_isolated(handler, network_hosts=(f"127.0.0.1:{port}",))
    assert [k.key for k in allowed.list_keys()] == ["REGION"]  # through the sandbox
    other = port + 1 if port < 65535 else port - 1
    refused = run_isolated(handler, network_hosts=(f"127.0.0.1:{other}",))
    with pytest.raises(UpstreamUnavailable):
        refused.list_keys()  # Landlock refused the connect: EACCES
    # the same handler in-process (no sandbox) does reach it
    assert [k.key for k in handler.list_keys()] == ["REGION"]
