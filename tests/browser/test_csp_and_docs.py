"""The Content-Security-Policy in chromium: the API docs (Swagger UI and ReDoc, from the
installed sidecar package) render with no request leaving the site and nothing blocked.
The admin, wizard and project page are covered by test_aws_plugin.py through ``chromium()``,
which fails on any violation."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from .conftest import chromium, shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(
    ("path", "ready"),
    [
        ("/api/docs/", ".swagger-ui .information-container .title"),
        ("/api/redoc/", ".api-content h1"),
    ],
)
def test_api_docs_render_offline_under_the_policy(live_server: Any, path: str, ready: str) -> None:
    site = urlsplit(live_server.url).netloc
    with chromium() as page:
        elsewhere: list[str] = []
        page.on(
            "response",  # a request the policy blocks never gets a response
            lambda response: (
                elsewhere.append(response.url)
                if urlsplit(response.url).netloc not in (site, "")
                and urlsplit(response.url).scheme in ("http", "https")
                else None
            ),
        )
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 200
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy
        page.wait_for_selector(ready, timeout=60_000)  # ReDoc's bundle is slow on a busy host
        assert "Imbi integrations API" in page.content()
        shot(page, f"api-docs-{path.strip('/').replace('/', '-')}")
        assert not elsewhere, f"responses from outside the site: {elsewhere}"
        if path == "/api/redoc/":
            # ReDoc's bundle hard-codes a remote logo; the site serves it with its own.
            page.wait_for_selector("img[alt='redocly logo']")
            logo = page.get_attribute("img[alt='redocly logo']", "src") or ""
            assert logo.startswith("/static/"), logo
        # chromium() fails on any policy violation (none expected: nothing leaves the site)


def test_the_policy_blocks_an_injected_inline_script(live_server: Any) -> None:
    """The check can fail: an inline script is refused and reported."""
    with chromium() as page:
        page.goto(f"{live_server.url}/accounts/login/")
        page.evaluate(
            "() => { const s = document.createElement('script');"
            " s.textContent = 'window.__injected = 1'; document.body.appendChild(s); }"
        )
        page.wait_for_timeout(200)
        assert page.evaluate("() => window.__injected") is None
        assert page.csp_violations, "the injected inline script was not reported"
        page.csp_violations.clear()  # expected here; chromium() checks the rest
