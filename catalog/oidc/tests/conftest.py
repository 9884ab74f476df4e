"""A real OpenID provider on loopback (``oidc-provider-mock``: authlib's authorization server
with discovery, JWKS, RS256 ID tokens, refresh tokens and userinfo), and a transparent
fault-injecting proxy in front of it.

The plugin always talks to the proxy, so the issuer it is configured with is the proxy's URL
(the provider builds every URL from the Host header, which the proxy passes through). By
default the proxy forwards bytes unchanged; a test sets ``proxy.tamper`` to change one answer
the way a broken or hostile network would: swap the ID token for another one the *real*
provider issued (another client, another issuer, another key), flip signature bytes, answer
malformed JSON, or be slow. Nothing here issues a token itself.

``flow`` drives the provider's authorization form with HTTP (the login a browser would do)
and returns the callback's code, like the platform's redirect URI would receive it.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import werkzeug.serving
from imbi_plugin_oidc.plugin import OpenIDConnect
from imbi_plugin_oidc.provider import clear_caches
from imbi_plugin_sdk import AuthorizationResponse, AuthorizationStart, Credentials, PkcePair
from imbi_plugin_sdk.testkit import make_context, sample_authorization

os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")  # the provider is on http loopback
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import oidc_provider_mock

CLIENT_ID = "imbi-platform"
CLIENT_SECRET = "client-secret-7f3a9c2e1b"
REDIRECT_URI = "https://imbi.example.com/identity/oidc/callback"
USER = "ada"
CLAIMS = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "email_verified": True,
    "picture": "https://avatars.example.com/ada.png",
}

Tamper = Callable[[str, int, bytes], tuple[int, bytes]]


@dataclass
class Server:
    url: str
    thread: threading.Thread
    server: Any

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


def _serve_provider(**options: Any) -> Server:
    app = oidc_provider_mock.app(**options)
    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    httpx.put(f"{url}/users/{USER}", json=CLAIMS).raise_for_status()
    return Server(url, thread, server)


@dataclass
class Proxy:
    """Forwards every request to ``upstream``, Host header included; ``tamper`` may change
    the status and body of an answer (by request path). ``seen`` keeps every response body
    that passed, so tests can check that no token leaks anywhere."""

    upstream: str
    url: str = ""
    tamper: Tamper | None = None
    seen: list[bytes] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self) -> Proxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() != "content-length"}
                response = httpx.request(
                    self.command, proxy.upstream + self.path, content=body, headers=headers
                )
                status, content = response.status_code, response.content
                path = urlsplit(self.path).path
                if proxy.tamper is not None:
                    status, content = proxy.tamper(path, status, content)
                proxy.seen.append(content)
                self.send_response(status)
                for name in ("Content-Type", "Location", "WWW-Authenticate"):
                    if name in response.headers:
                        self.send_header(name, response.headers[name])
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture(scope="session")
def provider() -> Iterator[Server]:
    server = _serve_provider()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def other_provider() -> Iterator[Server]:
    """A second real provider: its own signing key."""
    server = _serve_provider()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def short_provider() -> Iterator[Server]:
    """Tokens live one second and there is no refresh token."""
    server = _serve_provider(access_token_max_age=timedelta(seconds=1), issue_refresh_token=False)
    yield server
    server.stop()


@pytest.fixture
def proxy(provider: Server) -> Iterator[Proxy]:
    clear_caches()
    running = Proxy(provider.url).start()
    yield running
    running.stop()
    clear_caches()


def authorize(
    issuer: str,
    start: AuthorizationStart,
    *,
    client_id: str = CLIENT_ID,
    deny: bool = False,
    host: str | None = None,
) -> AuthorizationResponse:
    """Log in at the provider's form as ``USER`` and return the callback's code and state.

    ``host`` sends the requests to ``issuer`` under another Host header (the provider then
    names that host as the issuer in what it issues)."""
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": start.redirect_uri,
        "scope": "openid profile email",
        "state": start.state,
        "nonce": start.nonce,
        "code_challenge": start.code_challenge,
        "code_challenge_method": "S256",
    }
    headers = {"Host": host} if host else {}
    url = f"{issuer}/oauth2/authorize"
    form = {"action": "deny"} if deny else {"sub": USER}
    answer = httpx.post(url, params=query, data=form, headers=headers)
    assert answer.status_code == 302, answer.text[:300]
    callback = urlsplit(answer.headers["Location"])
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == start.redirect_uri
    params = {k: v[-1] for k, v in parse_qs(callback.query).items()}
    return AuthorizationResponse.parse(params)


def follow(redirect_url: str, *, deny: bool = False) -> AuthorizationResponse:
    """Log in at the URL the plugin built (begin_authorization), as a browser would."""
    answer = httpx.post(redirect_url, data={"action": "deny"} if deny else {"sub": USER})
    assert answer.status_code == 302, answer.text[:300]
    callback = urlsplit(answer.headers["Location"])
    return AuthorizationResponse.parse({k: v[-1] for k, v in parse_qs(callback.query).items()})


def direct_tokens(issuer: str, start: AuthorizationStart, **kwargs: Any) -> dict[str, Any]:
    """A token response straight from a provider (not through the plugin): the material a
    hostile network would swap in."""
    host = kwargs.pop("host", None)
    client_id = kwargs.pop("client_id", CLIENT_ID)
    response = authorize(issuer, start, client_id=client_id, host=host)
    answer = httpx.post(
        f"{issuer}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": response.code,
            "redirect_uri": start.redirect_uri,
        },
        auth=(client_id, "any-secret"),
        headers={"Host": host} if host else {},
    )
    answer.raise_for_status()
    tokens: dict[str, Any] = answer.json()
    return tokens


@pytest.fixture
def make_plugin() -> Callable[..., OpenIDConnect]:
    def build(issuer: str, **settings: Any) -> OpenIDConnect:
        context = make_context(service_settings={"issuer": issuer, **settings}, timeout=5.0)
        return OpenIDConnect(context, Credentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET))

    return build


def new_start() -> tuple[AuthorizationStart, PkcePair]:
    return sample_authorization(REDIRECT_URI)


@pytest.fixture
def idp() -> Any:
    """The helpers above, for the test modules (conftest is not importable by name)."""
    import types

    return types.SimpleNamespace(
        authorize=authorize,
        follow=follow,
        direct_tokens=direct_tokens,
        new_start=new_start,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uri=REDIRECT_URI,
        user=USER,
        claims=CLAIMS,
        Proxy=Proxy,
    )
