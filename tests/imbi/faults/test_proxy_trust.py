"""Fault 8 of issue 21 (the brief's item 5): the proxy cannot be bypassed on a host install.

- gunicorn (``imbi.gunicorn_conf``) listens on loopback unless ``IMBI_BIND_ADDRESS`` says
  otherwise (the image sets ``0.0.0.0``).
- ``X-Forwarded-Proto`` and ``X-Forwarded-For`` are believed only from
  ``IMBI_TRUSTED_PROXIES`` (default loopback): from any other peer a forged
  ``X-Forwarded-Proto: https`` is plain HTTP (redirected to HTTPS), and a forged
  ``X-Forwarded-For`` does not change the client address throttling counts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import RequestFactory, override_settings

from imbi.core.proxy import TrustedProxyMiddleware
from imbi.core.throttle import client_address
from imbi.testing.services import free_port

from .conftest import Web


def test_gunicorn_binds_loopback_unless_told_otherwise(web_server: Callable[..., Web]) -> None:
    port = free_port()
    web = web_server(bind=False, PORT=str(port))
    assert f"Listening at: http://127.0.0.1:{port}" in web.logs()
    wide = web_server(bind=False, PORT=str(free_port()), IMBI_BIND_ADDRESS="0.0.0.0")
    assert f"Listening at: http://0.0.0.0:{wide.port}" in wide.logs()


def test_forged_https_is_believed_only_from_a_trusted_proxy(
    web_server: Callable[..., Web],
) -> None:
    proxied = web_server()  # default IMBI_TRUSTED_PROXIES: loopback, where this test runs
    bypass = web_server(IMBI_TRUSTED_PROXIES="10.9.9.9")  # this test is not the proxy
    through_proxy = proxied.get("/api/whoami", follow_redirects=False)
    assert through_proxy.status_code == 401, through_proxy.headers  # served, as HTTPS
    assert "Strict-Transport-Security" in through_proxy.headers
    forged = bypass.get("/api/whoami", follow_redirects=False)  # X-Forwarded-Proto: https
    assert forged.status_code == 301
    assert forged.headers["Location"] == "https://imbi.test/api/whoami"
    assert "Strict-Transport-Security" not in forged.headers
    assert "forwarded headers from 127.0.0.1 ignored" in bypass.logs()


@pytest.mark.parametrize(
    ("peer", "trusted", "seen"),
    [("203.0.113.5", False, None), ("127.0.0.1", True, "198.51.100.7, 10.0.0.1")],
)
def test_forwarded_for_counts_only_from_a_trusted_proxy(
    peer: str, trusted: bool, seen: str | None
) -> None:
    """What axes' ipware reads (with IMBI_TRUSTED_PROXY_COUNT) is gone from an untrusted peer,
    so the throttled address is the peer's own."""
    request = RequestFactory().get(
        "/accounts/login/",
        REMOTE_ADDR=peer,
        HTTP_X_FORWARDED_FOR="198.51.100.7, 10.0.0.1",
        HTTP_X_FORWARDED_PROTO="https",
    )
    handled: dict[str, Any] = {}

    def view(req: Any) -> Any:
        handled["forwarded_for"] = req.META.get("HTTP_X_FORWARDED_FOR")
        if not trusted:
            assert client_address(req) == peer
        handled["secure"] = req.is_secure()
        return None

    with override_settings(
        AXES_IPWARE_PROXY_COUNT=1, SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")
    ):
        TrustedProxyMiddleware(view)(request)
    assert handled == {"forwarded_for": seen, "secure": trusted}
