"""Fixtures for imbi-plugin-aws: a real moto server over HTTP and handler factories.

No in-process mocking: the handlers build real boto3 clients and reach moto through the
``base_url`` service setting, exactly as they would reach LocalStack or a proxy.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from imbi_plugin_sdk import Credentials, PluginHandler
from imbi_plugin_sdk.testkit import make_context
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
ACCESS_KEY_ID = "AKIAIMBITESTKEY00001"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzImbiTestSecret"


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def closed_port_url() -> str:
    """A local URL nothing listens on (the port was just released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def secret_key() -> str:
    """The secret access key the tests use: it must never appear in an error."""
    return SECRET_ACCESS_KEY


@pytest.fixture
def credentials() -> Credentials:
    return Credentials(access_key_id=ACCESS_KEY_ID, secret_access_key=SECRET_ACCESS_KEY)


@pytest.fixture
def boto(moto_url: str) -> Callable[[str], Any]:
    """A plain boto3 client on the moto server, to seed and inspect data independently."""

    def make(service: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            region_name=REGION,
            endpoint_url=moto_url,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )

    return make


@pytest.fixture
def unique() -> str:
    """A fresh name fragment so tests sharing one moto server never see each other's data."""
    return uuid.uuid4().hex[:12]


@pytest.fixture(params=["in_process", "isolated"])
def runner_mode(request: Any) -> str:
    """Every test runs in-process and in a sandboxed runner (network: the emulator only)."""
    return str(request.param)


@pytest.fixture
def make_handler(
    moto_url: str, credentials: Credentials, runner_mode: str, run_isolated: Any
) -> Callable[..., PluginHandler]:
    def make(
        cls: type[PluginHandler],
        *,
        search_template: str = "",
        options: dict[str, object] | None = None,
        creds: Credentials | None = None,
        url: str | None = None,
        timeout: float = 5.0,
    ) -> PluginHandler:
        settings = {"region": REGION, "base_url": moto_url if url is None else url}
        context = make_context(
            search_template=search_template,
            options=cls.manifest.validate_options(options or {}),
            service_settings=settings,
            timeout=timeout,
        )
        handler = cls(context, credentials if creds is None else creds)
        if runner_mode == "isolated":
            port = urlsplit(moto_url).port
            return run_isolated(handler, network_hosts=(f"127.0.0.1:{port}",))  # type: ignore[no-any-return]
        return handler

    return make
