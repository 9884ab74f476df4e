"""Browser-test fixtures: Debian's chromium through Playwright, and a moto server with AWS data.

Playwright runs in the test's thread while pytest-django's ``live_server`` serves the site
from another; do every ORM call *before* entering ``chromium()`` (an ORM call inside
``sync_playwright()`` raises ``SynchronousOnlyOperation``; see the shared dependency notes).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

REGION = "us-east-1"
ACCESS_KEY_ID = "AKIAIMBIBROWSERTEST1"
SECRET_ACCESS_KEY = "browser-secret-access-key-4d0b8c1e9f"
SECURE_VALUE = "moto-secure-string-value-7e21"
LOG_GROUP = "/ecs/billing"
LOG_LINES = 60


# Every Content-Security-Policy violation is reported to the console, where the page
# listener below collects it (Chromium also logs "Refused to ..." there).
_REPORT_CSP = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


@contextmanager
def chromium() -> Iterator[Any]:
    """A fresh chromium page; screenshots go to ``artifacts/``.

    Fails the test if any page it visits lacks a Content-Security-Policy header or anything
    on it violates the policy (``page.csp_violations`` lists them as they happen).
    """
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 1000})
            page.set_default_timeout(20_000)
            violations: list[str] = []
            unprotected: list[str] = []
            page.add_init_script(_REPORT_CSP)

            def on_console(message: Any) -> None:
                text = message.text
                if "Content Security Policy" in text or text.startswith("CSP violation"):
                    violations.append(text)

            def on_response(response: Any) -> None:
                document = response.request.resource_type == "document"
                if (
                    document
                    and response.status < 300
                    and ("content-security-policy" not in response.headers)
                ):
                    unprotected.append(response.url)

            page.on("console", on_console)
            page.on("response", on_response)
            page.csp_violations = violations
            yield page
            assert not violations, f"Content-Security-Policy violations: {violations}"
            assert not unprotected, f"pages without a Content-Security-Policy: {unprotected}"
        finally:
            browser.close()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto_aws() -> Iterator[dict[str, Any]]:
    """A moto server with SSM parameters under /acme/billing/ and a CloudWatch log group."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    # moto's backends are process-wide: start from (and leave) an empty account so other
    # tests' parameters and log groups neither collide with nor leak into these pages
    reset = f"{url}/moto-api/reset"
    httpx.post(reset, timeout=10).raise_for_status()
    try:

        def client(service: str) -> Any:
            return boto3.client(
                service,
                region_name=REGION,
                endpoint_url=url,  # type: ignore[call-overload]
                aws_access_key_id=ACCESS_KEY_ID,
                aws_secret_access_key=SECRET_ACCESS_KEY,
            )

        ssm = client("ssm")
        ssm.put_parameter(Name="/acme/billing/DB_HOST", Value="db.internal", Type="String")
        ssm.put_parameter(Name="/acme/billing/DB_PORT", Value="5432", Type="String")
        ssm.put_parameter(Name="/acme/billing/DB_PASSWORD", Value=SECURE_VALUE, Type="SecureString")
        ssm.put_parameter(Name="/acme/payments/OTHER", Value="not-billing", Type="String")

        logs = client("logs")
        logs.create_log_group(logGroupName=LOG_GROUP)
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName="web-1")
        start = datetime.now(UTC) - timedelta(minutes=20)
        events = []
        for index in range(LOG_LINES):
            level = "error" if index % 10 == 0 else "info"
            message = {
                "level": level,
                "message": f"GET /invoices/{index} {500 if level == 'error' else 200}",
                "path": f"/invoices/{index}",
            }
            moment = start + timedelta(seconds=10 * index)
            events.append(
                {"timestamp": int(moment.timestamp() * 1000), "message": json.dumps(message)}
            )
        logs.put_log_events(logGroupName=LOG_GROUP, logStreamName="web-1", logEvents=events)
        yield {"url": url, "region": REGION}
    finally:
        httpx.post(reset, timeout=10)
        server.stop()
