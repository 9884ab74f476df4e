"""docs/plugin-authors.md: the worked identity and deployment examples run as printed.

Each ```python block preceded by ``<!-- example: NAME -->`` is loaded as it is on the page:
``identity`` and ``deployment`` as the modules ``acme_sso`` and ``acme_deploy``, their
``*-test`` blocks as test code calling them. The identity example logs in at a real OpenID
provider on loopback (oidc-provider-mock); the deployment example talks to a small emulator
of the API the page describes, which refuses any request without the user's bearer token.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import werkzeug.serving
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "plugin-authors.md"
BLOCK_RE = re.compile(r"<!-- example: (?P<name>[\w-]+) -->\n```python\n(?P<body>.*?)```", re.S)
SHA = "0123456789abcdef0123456789abcdef01234567"


def examples() -> dict[str, str]:
    return {match["name"]: match["body"] for match in BLOCK_RE.finditer(PAGE.read_text())}


def load(name: str, code: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = f"<docs/plugin-authors.md:{name}>"
    sys.modules[name] = module
    exec(compile(code, module.__file__, "exec"), module.__dict__)  # noqa: S102 - the page's code
    return module


@pytest.fixture(scope="module")
def provider_url() -> Iterator[str]:
    os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import oidc_provider_mock

    server = werkzeug.serving.make_server("127.0.0.1", 0, oidc_provider_mock.app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    claims = {"name": "Ada Lovelace", "email": "ada@example.com", "email_verified": True}
    httpx.put(f"{url}/users/ada", json=claims).raise_for_status()
    yield url
    server.shutdown()
    thread.join(5)


class DeployAPI:
    """The API the deployment example is written against, for one project."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.deployments: list[dict[str, Any]] = []
        self.refs = [
            {"name": "main", "kind": "branch", "sha": SHA, "default": True},
            {"name": "v1.0.0", "kind": "tag", "sha": SHA},
        ]

    def __call__(self, request: Request) -> Response:
        self.requests.append(
            {"path": request.path, "authorization": request.headers.get("Authorization", "")}
        )
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return Response(status=401)
        prefix = "/projects/contract-test-project"
        if not request.path.startswith(prefix):
            return Response(status=404)
        path = request.path[len(prefix) :]
        names = {ref["name"] for ref in self.refs}
        if path == "/environments":
            return self.json([{"name": "production", "protected": True}, {"name": "staging"}])
        if path == "/refs":
            kind = request.args.get("kind")
            return self.json([ref for ref in self.refs if kind in (None, ref["kind"])])
        match = re.fullmatch(r"/refs/(.+)/commits", path)
        if match:
            if match[1] not in names:
                return Response(status=404)
            return self.json([{"sha": SHA, "message": "Initial commit", "author": "ada"}])
        if path == "/compare":
            base, head = request.args.get("base"), request.args.get("head")
            if base not in names or head not in names:
                return Response(status=404)
            status = "identical" if base == head else "ahead"
            return self.json({"base": base, "head": head, "status": status})
        if path == "/deployments" and request.method == "POST":
            body = json.loads(request.data)
            if body["ref"] not in names:
                return Response(status=404)
            deployment = {
                "id": str(len(self.deployments) + 1),
                "ref": body["ref"],
                "environment": body["environment"],
                "status": "queued",
                "sha": SHA,
                "url": f"https://deploy.acme.example/runs/{len(self.deployments) + 1}",
            }
            self.deployments.insert(0, deployment)
            return self.json(deployment)
        if path == "/deployments":
            return self.json(self.deployments)
        match = re.fullmatch(r"/deployments/(\d+)", path)
        if match:
            for deployment in self.deployments:
                if deployment["id"] == match[1]:
                    return self.json(deployment)
        return Response(status=404)

    @staticmethod
    def json(data: object) -> Response:
        return Response(json.dumps(data), content_type="application/json")


def test_the_page_has_both_examples_and_their_tests() -> None:
    assert set(examples()) >= {"identity", "identity-test", "deployment", "deployment-test"}


def test_the_identity_example_connects_a_user(provider_url: str) -> None:
    found = examples()
    load("acme_sso", found["identity"])
    test = load("acme_sso_test", found["identity-test"])
    test.test_connect_describe_and_refresh(provider_url)


def test_the_deployment_example_deploys_as_the_user(httpserver: HTTPServer) -> None:
    api = DeployAPI()
    httpserver.expect_request(re.compile(".*")).respond_with_handler(api)
    found = examples()
    load("acme_deploy", found["deployment"])
    test = load("acme_deploy_test", found["deployment-test"])
    test.test_deploys_as_the_user(httpserver.url_for("/").rstrip("/"), api.requests)
    assert api.requests and all(r["authorization"] == "Bearer ada-token-123" for r in api.requests)
