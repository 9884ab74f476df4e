"""Browser-test fixtures: Debian's chromium through Playwright, and a moto server with AWS data.

Every page a test's browser loads is checked with axe-core (the ``axe.min.js`` that the
``axe-playwright-python`` dev dependency bundles): ``chromium()`` fails the test on any
critical or serious violation (``page.axe_violations`` lists them as they are found).

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


# axe-core's impact levels that fail a test (the others are reported by ``axe_audit``).
AXE_BLOCKING = ("critical", "serious")
# One run at a time per document (the load listener's and a test's own may overlap).
# ``preload: false``: axe would otherwise re-read the page's style sheets (for
# css-orientation-lock) by injecting <style> elements (an ``@import`` of the admin's
# widgets.css), which the Content-Security-Policy rightly refuses, so the check itself would
# fail every admin form; that one rule then has no style sheets to read (none here locks the
# orientation).
_AXE_RUN = """async () => {
  const previous = window.__imbiAxe || Promise.resolve();
  const run = previous.catch(() => null).then(
    () => axe.run(document, {
      resultTypes: ["violations"],
      preload: false,
    }));
  window.__imbiAxe = run;
  const result = await run;
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.slice(0, 5).map((n) => n.target.join(" ")),
  }));
}"""


def _axe_source() -> str:
    import axe_playwright_python

    return (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()


def axe_audit(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (every impact level).

    The script is injected through the DevTools protocol, which the page's
    Content-Security-Policy does not govern, so the check itself adds no violation.
    """
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    return list(page.evaluate(_AXE_RUN))


def axe_blocking(page: Any) -> list[str]:
    """The critical and serious violations on the page, one line each."""
    return [
        f"{page.url}: {v['impact']} {v['id']} ({v['help']}) at {v['targets']}"
        for v in axe_audit(page)
        if v["impact"] in AXE_BLOCKING
    ]


@contextmanager
def chromium() -> Iterator[Any]:
    """A fresh chromium page; screenshots go to ``artifacts/``.

    Fails the test if any page it visits lacks a Content-Security-Policy header or anything
    on it violates the policy (``page.csp_violations`` lists them as they happen), or has a
    critical or serious axe-core violation once loaded (``page.axe_violations``; each URL is
    checked once; a page left before its check finished is checked again on the next visit).
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
                    violations.append(f"{text} (on {page.url})")

            def on_response(response: Any) -> None:
                document = response.request.resource_type == "document"
                if (
                    document
                    and response.status < 300
                    and ("content-security-policy" not in response.headers)
                ):
                    unprotected.append(response.url)

            inaccessible: list[str] = []
            audited: set[str] = set()

            def on_load(loaded: Any) -> None:
                url = loaded.url
                if url in audited or not url.startswith("http"):
                    return
                try:
                    found = axe_blocking(loaded)
                except Exception as error:  # the test navigated on before axe finished
                    if "context was destroyed" in str(error) or "closed" in str(error):
                        return
                    raise
                audited.add(url)
                inaccessible.extend(found)

            page.on("console", on_console)
            page.on("response", on_response)
            page.on("load", on_load)
            page.csp_violations = violations
            page.axe_violations = inaccessible
            page.axe_audited = audited
            yield page
            problems = [
                *(f"Content-Security-Policy violation: {v}" for v in violations),
                *(f"page without a Content-Security-Policy: {url}" for url in unprotected),
                *(f"axe-core (critical/serious): {v}" for v in inaccessible),
            ]
            assert not problems, "\n".join(problems)
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
