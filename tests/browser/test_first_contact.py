"""First contact: ``make run`` in a clean data directory prints a short output ending with the
URL and both logins, and ``/``, ``/api/`` and ``/api/docs/`` load in a browser with every
request to a host other than loopback blocked (and recorded)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from .conftest import _free_port, chromium, shot

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 25


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``make run PORT=<free>`` with a fresh data directory; its output until the logins."""
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "IMBI_", "DATABASE", "REDIS"))
    }
    env["IMBI_DATA_DIR"] = str(tmp_path_factory.mktemp("demo-data"))
    # The test virtualenv holds a plugin that hangs at import on purpose (a new user's does
    # not): its sandboxed import may take 2 s, not the default 10 s, before it is recorded.
    env["IMBI_PLUGIN_IMPORT_TIMEOUT"] = "2"
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"PORT={port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if line.startswith("Login (owner"):
                break
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(f"{url}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield {"url": url, "lines": lines}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


def test_make_run_output_is_short_and_ends_with_the_url_and_both_logins(
    demo: dict[str, Any],
) -> None:
    lines = demo["lines"]
    # Everything before the install line is the install step (absent when already installed).
    after = [line for line in lines if not line.startswith("Installing the platform")]
    assert 0 < len(after) <= MAX_LINES, "\n".join(lines)
    url = demo["url"]
    assert after[-3] == f"Imbi is at {url}/"
    assert re.fullmatch(
        rf"Login \(superuser, shown once\): username 'admin' password '\S+'  ->  {url}/admin/",
        after[-2],
    )
    assert re.fullmatch(
        rf"Login \(owner of billing-api, shown once\): username 'owner' password '\S+'  ->  "
        rf"{url}/projects/",
        after[-1],
    )
    assert sum("password" in line for line in after) == 2
    owner_password = re.search(r"password '(\S+)'", after[-1])
    assert owner_password is not None
    client = httpx.Client(base_url=url, follow_redirects=False)
    login = client.get("/accounts/login/")
    token = client.cookies["csrftoken"]
    response = client.post(
        "/accounts/login/",
        data={
            "username": "owner",
            "password": owner_password.group(1),
            "csrfmiddlewaretoken": token,
        },
        headers={"Referer": f"{url}/accounts/login/"},
    )
    assert login.status_code == 200 and response.status_code == 302, response.text[:500]


def _visit(page: Any, url: str) -> tuple[int, list[str]]:
    """Load ``url`` with every non-loopback request aborted; (status, blocked hosts)."""
    blocked: list[str] = []

    def route(request_route: Any) -> None:
        host = urlsplit(request_route.request.url).hostname or ""
        if host in ("127.0.0.1", "localhost", "::1") or request_route.request.url.startswith(
            ("data:", "blob:")
        ):
            request_route.continue_()
        else:
            blocked.append(request_route.request.url)
            request_route.abort()

    page.route("**/*", route)
    response = page.goto(url)
    page.wait_for_load_state("networkidle")
    page.unroute("**/*")
    return response.status, blocked


def test_landing_and_api_root_load_offline(demo: dict[str, Any]) -> None:
    url = demo["url"]
    with chromium() as page:
        status, blocked = _visit(page, f"{url}/")
        assert (status, blocked) == (200, [])
        assert page.locator("h1").inner_text() == "Imbi integrations"
        for link in ("Projects", "Admin", "Plugin catalog", "REST API", "API docs"):
            assert page.locator(".cards strong", has_text=link).count() == 1, link
        assert page.locator("table.health").inner_text().count("ok") >= 1
        shot(page, "landing")
        status, blocked = _visit(page, f"{url}/api/")
        assert (status, blocked) == (200, [])
        assert "per_organization" in page.content()


def test_api_docs_load_offline(demo: dict[str, Any]) -> None:
    with chromium() as page:
        status, blocked = _visit(page, f"{demo['url']}/api/docs/")
        assert (status, blocked) == (200, [])
        page.wait_for_selector(".swagger-ui .info", timeout=10_000)
