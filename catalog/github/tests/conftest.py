"""A local emulator of GitHub's Actions variables and secrets REST API for the plugin tests.

Real HTTP on 127.0.0.1 (pytest-httpserver). It keeps repositories in memory and checks
every request the plugin makes: the bearer token, ``Accept`` and
``X-GitHub-Api-Version`` headers, the path and the JSON body of each documented
endpoint. It holds a real PyNaCl ``PrivateKey``, publishes the public key and, on
``PUT .../secrets/{name}``, opens the sealed box with it: ``plaintexts`` is what the
plugin really encrypted, which is how the tests prove sealing works. Secret values are
never returned by any endpoint; ``responses`` keeps every body sent, so tests can check
that. Protocol mistakes are recorded in ``violations`` and fail the test at teardown.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from imbi_plugin_github.actions import GitHubActionsConfiguration
from imbi_plugin_sdk import Credentials
from imbi_plugin_sdk.testkit import make_context
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

TOKEN = "ghp_EmulatorToken0123456789abcdefABCDEF42"
KEY_ID = "568250167242549743"
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REPO = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(rf"^{_REPO}$"), "get_repo"),
    ("GET", re.compile(rf"^{_REPO}/actions/variables$"), "list_variables"),
    ("POST", re.compile(rf"^{_REPO}/actions/variables$"), "create_variable"),
    ("GET", re.compile(rf"^{_REPO}/actions/variables/(?P<name>[^/]+)$"), "get_variable"),
    ("PATCH", re.compile(rf"^{_REPO}/actions/variables/(?P<name>[^/]+)$"), "update_variable"),
    ("DELETE", re.compile(rf"^{_REPO}/actions/variables/(?P<name>[^/]+)$"), "delete_variable"),
    ("GET", re.compile(rf"^{_REPO}/actions/secrets$"), "list_secrets"),
    ("GET", re.compile(rf"^{_REPO}/actions/secrets/public-key$"), "public_key"),
    ("GET", re.compile(rf"^{_REPO}/actions/secrets/(?P<name>[^/]+)$"), "get_secret"),
    ("PUT", re.compile(rf"^{_REPO}/actions/secrets/(?P<name>[^/]+)$"), "put_secret"),
    ("DELETE", re.compile(rf"^{_REPO}/actions/secrets/(?P<name>[^/]+)$"), "delete_secret"),
]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Repo:
    full_name: str
    variables: dict[str, dict[str, str]] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    plaintexts: dict[str, str] = field(default_factory=dict)  # what the plugin sealed


class Refused(Exception):
    def __init__(self, status: int, message: str, *, violation: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.violation = violation


@dataclass
class GitHubEmulator:
    token: str = TOKEN
    prefix: str = ""  # "/api/v3" for GitHub Enterprise Server
    url: str = ""
    private_key: PrivateKey = field(default_factory=PrivateKey.generate)
    repos: dict[str, Repo] = field(default_factory=dict)
    log: list[tuple[str, str, dict[str, list[str]], Any]] = field(default_factory=list)
    responses: list[bytes] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    rate_limit_reset: int | None = None
    forced: tuple[int, dict[str, str], dict[str, Any]] | None = None
    delay: float = 0.0

    def repo(self, full_name: str) -> Repo:
        return self.repos.setdefault(full_name.lower(), Repo(full_name))

    def add_variable(self, repo: str, name: str, value: str) -> None:
        stamp = _now()
        self.repo(repo).variables[name.upper()] = {
            "name": name.upper(),
            "value": value,
            "created_at": stamp,
            "updated_at": stamp,
        }

    def add_secret(self, repo: str, name: str, plaintext: str) -> None:
        stamp = _now()
        self.repo(repo).secrets[name.upper()] = {
            "name": name.upper(),
            "created_at": stamp,
            "updated_at": stamp,
        }
        self.repo(repo).plaintexts[name.upper()] = plaintext

    def calls(self, method: str | None = None) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _, _ in self.log if method is None or m == method]

    # ----------------------------------------------------------------- http

    def __call__(self, request: Request) -> Response:
        deadline = time.monotonic() + self.delay
        while self.delay and time.monotonic() < deadline:  # teardown sets delay to 0
            time.sleep(0.02)
        response = self._handle(request)
        self.responses.append(response.get_data())
        return response

    def _handle(self, request: Request) -> Response:
        body: Any = None
        if request.get_data():
            if request.mimetype != "application/json":
                self.violations.append(f"{request.method} {request.path}: not JSON")
            try:
                body = json.loads(request.get_data())
            except ValueError:
                self.violations.append(f"{request.method} {request.path}: invalid JSON")
                return _json(400, {"message": "Problems parsing JSON"})
        query = parse_qs(request.query_string.decode())
        self.log.append((request.method, request.path, query, body))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _json(401, {"message": "Bad credentials"})
        if request.headers.get("X-GitHub-Api-Version") != "2022-11-28":
            self.violations.append(
                f"X-GitHub-Api-Version {request.headers.get('X-GitHub-Api-Version')!r}"
            )
        if request.headers.get("Accept") != "application/vnd.github+json":
            self.violations.append(f"Accept {request.headers.get('Accept')!r}")
        if not request.headers.get("User-Agent"):
            self.violations.append("no User-Agent (GitHub refuses such requests)")
        if self.rate_limit_reset is not None:
            return _json(
                403,
                {"message": "API rate limit exceeded for user ID 1."},
                {
                    "X-RateLimit-Limit": "5000",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(self.rate_limit_reset),
                },
            )
        if self.forced is not None:
            status, headers, payload = self.forced
            return _json(status, payload, headers)
        path = request.path
        if not path.startswith(self.prefix + "/"):
            self.violations.append(f"path {path} outside {self.prefix or '/'}")
            return _json(404, {"message": "Not Found"})
        path = path[len(self.prefix) :]
        for method, pattern, action in ROUTES:
            match = pattern.match(path)
            if match and method == request.method:
                repo = self.repos.get(f"{match['owner']}/{match['repo']}".lower())
                if repo is None:
                    return _json(404, {"message": "Not Found"})
                try:
                    status, payload = getattr(self, action)(repo, query, body, **_name(match))
                except Refused as exc:
                    if exc.violation:
                        self.violations.append(f"{request.method} {path}: {exc}")
                    return _json(exc.status, {"message": str(exc)})
                return _json(status, payload)
        self.violations.append(f"no such endpoint {request.method} {path}")
        return _json(404, {"message": "Not Found"})

    # ----------------------------------------------------------------- endpoints

    @staticmethod
    def _page(query: dict[str, list[str]], maximum: int) -> tuple[int, int]:
        try:
            per_page = int(query.get("per_page", ["30"])[0])
            page = int(query.get("page", ["1"])[0])
        except ValueError:
            raise Refused(422, "per_page and page must be integers") from None
        if per_page < 1 or page < 1:
            raise Refused(422, "per_page and page must be positive")
        return min(per_page, maximum), page  # GitHub silently caps per_page

    def get_repo(self, repo: Repo, query: Any, body: Any) -> tuple[int, Any]:
        return 200, {
            "full_name": repo.full_name,
            "private": True,
            "visibility": "private",
            "permissions": {"admin": True, "push": True, "pull": True},
        }

    def list_variables(self, repo: Repo, query: Any, body: Any) -> tuple[int, Any]:
        per_page, page = self._page(query, 30)
        items = [repo.variables[name] for name in sorted(repo.variables)]
        chunk = items[(page - 1) * per_page : page * per_page]
        return 200, {"total_count": len(items), "variables": chunk}

    def get_variable(self, repo: Repo, query: Any, body: Any, name: str) -> tuple[int, Any]:
        item = repo.variables.get(name.upper())
        if item is None:
            raise Refused(404, "Not Found", violation=False)
        return 200, item

    def _variable_body(self, body: Any) -> tuple[str, str]:
        if not isinstance(body, dict) or set(body) != {"name", "value"}:
            raise Refused(422, f"body must be {{name, value}}, got {body!r}")
        name, value = body["name"], body["value"]
        if not isinstance(name, str) or not isinstance(value, str):
            raise Refused(422, "name and value must be strings")
        if not NAME_RE.match(name) or name.upper().startswith("GITHUB_"):
            raise Refused(422, f"invalid variable name {name!r}")
        return name.upper(), value

    def create_variable(self, repo: Repo, query: Any, body: Any) -> tuple[int, Any]:
        name, value = self._variable_body(body)
        if name in repo.variables:
            raise Refused(409, "Already exists - Variable already exists", violation=False)
        self.add_variable(repo.full_name, name, value)
        return 201, {}

    def update_variable(self, repo: Repo, query: Any, body: Any, name: str) -> tuple[int, Any]:
        new_name, value = self._variable_body(body)
        item = repo.variables.get(name.upper())
        if item is None:
            raise Refused(404, "Not Found", violation=False)
        if new_name != name.upper():
            raise Refused(422, "the plugin never renames variables")
        item.update(value=value, updated_at=_now())
        return 204, None

    def delete_variable(self, repo: Repo, query: Any, body: Any, name: str) -> tuple[int, Any]:
        if repo.variables.pop(name.upper(), None) is None:
            raise Refused(404, "Not Found", violation=False)
        return 204, None

    def list_secrets(self, repo: Repo, query: Any, body: Any) -> tuple[int, Any]:
        per_page, page = self._page(query, 100)
        items = [repo.secrets[name] for name in sorted(repo.secrets)]
        chunk = items[(page - 1) * per_page : page * per_page]
        return 200, {"total_count": len(items), "secrets": chunk}

    def public_key(self, repo: Repo, query: Any, body: Any) -> tuple[int, Any]:
        key = bytes(self.private_key.public_key)
        return 200, {"key_id": KEY_ID, "key": base64.b64encode(key).decode()}

    def get_secret(self, repo: Repo, query: Any, body: Any, name: str) -> tuple[int, Any]:
        item = repo.secrets.get(name.upper())
        if item is None:
            raise Refused(404, "Not Found", violation=False)
        return 200, item  # metadata only, like GitHub

    def put_secret(self, repo: Repo, query: Any, body: Any, name: str) -> tuple[int, Any]:
        if not isinstance(body, dict) or set(body) != {"encrypted_value", "key_id"}:
            raise Refused(
                422, f"body must be {{encrypted_value, key_id}}, got keys {list(body or {})}"
            )
        if body["key_id"] != KEY_ID:
            raise Refused(422, "key_id does not match the repository public key")
        if not NAME_RE.match(name) or name.upper().startswith("GITHUB_"):
            raise Refused(422, f"invalid secret name {name!r}")
        try:
            sealed = base64.b64decode(body["encrypted_value"], validate=True)
            plaintext = SealedBox(self.private_key).decrypt(sealed).decode()
        except (ValueError, TypeError, CryptoError) as exc:
            raise Refused(422, f"encrypted_value is not a sealed box for our key: {exc}") from None
        existed = name.upper() in repo.secrets
        self.add_secret(repo.full_name, name, plaintext)
        return (204 if existed else 201), ({} if not existed else None)

    def delete_secret(self, repo: Repo, query: Any, body: Any, name: str) -> tuple[int, Any]:
        if repo.secrets.pop(name.upper(), None) is None:
            raise Refused(404, "Not Found", violation=False)
        repo.plaintexts.pop(name.upper(), None)
        return 204, None


def _name(match: re.Match[str]) -> dict[str, str]:
    return {"name": match["name"]} if "name" in match.groupdict() else {}


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    if status == 204 or payload is None:
        return Response(status=status, headers=headers)
    return Response(
        json.dumps(payload), status=status, headers=headers, content_type="application/json"
    )


# --------------------------------------------------------------------------- fixtures

REPOSITORY = "acme/billing"


@pytest.fixture(scope="module")
def github_server() -> Iterator[HTTPServer]:
    """One real HTTP server on 127.0.0.1 per test module (stopping one takes 0.5 s)."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    try:
        yield server
    finally:
        if server.is_running():
            server.stop()


def _serve(server: HTTPServer, prefix: str) -> GitHubEmulator:
    server.clear()
    emulator = GitHubEmulator(prefix=prefix, url=server.url_for("").rstrip("/") + prefix)
    emulator.repo(REPOSITORY)
    server.expect_request(re.compile(r"^/.*$")).respond_with_handler(emulator)
    return emulator


@pytest.fixture
def github(github_server: HTTPServer) -> Iterator[GitHubEmulator]:
    """A fresh emulator holding an empty acme/billing repository."""
    emulator = _serve(github_server, "")
    yield emulator
    emulator.delay = 0
    github_server.clear()
    assert not emulator.violations, f"requests GitHub would refuse: {emulator.violations}"


@pytest.fixture
def github_enterprise(github_server: HTTPServer) -> Iterator[GitHubEmulator]:
    """The same emulator mounted under /api/v3, as GitHub Enterprise Server serves it."""
    emulator = _serve(github_server, "/api/v3")
    yield emulator
    emulator.delay = 0
    github_server.clear()
    assert not emulator.violations, f"requests GitHub would refuse: {emulator.violations}"


@pytest.fixture(params=["in_process", "isolated"])
def runner_mode(request: Any) -> str:
    """Every test runs in-process and in a sandboxed runner (network: the emulator only)."""
    return str(request.param)


@pytest.fixture
def make_plugin(github: GitHubEmulator, runner_mode: str, run_isolated: Any) -> Any:
    """A factory of handlers pointed at the emulator (keyword overrides for the context)."""

    def make(
        *,
        token: str | None = TOKEN,
        template: str = REPOSITORY,
        options: dict[str, Any] | None = None,
        timeout: float = 5.0,
        settings: dict[str, Any] | None = None,
    ) -> GitHubActionsConfiguration:
        context = make_context(
            service_settings={"base_url": github.url} if settings is None else settings,
            options=options or {},
            search_template=template,
            timeout=timeout,
        )
        credentials = Credentials(token=token) if token is not None else Credentials()
        handler = GitHubActionsConfiguration(context, credentials)
        if runner_mode == "isolated":
            port = urlsplit(github.url).port
            return run_isolated(handler, network_hosts=(f"127.0.0.1:{port}",))
        return handler

    return make
