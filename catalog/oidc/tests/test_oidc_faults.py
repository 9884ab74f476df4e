"""Every way the provider or the network can fail, each with its own problem code, and no
token, code or secret in any error or log line.

The faults come from the real provider: a token it issued to another client, under another
issuer name, or signed by another provider's key is swapped into the answer by the proxy
(what a hostile network or a mix-up attack does); a token that expired; a token revoked at
the provider; the provider down; an answer that is not JSON.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from imbi_plugin_oidc.plugin import OpenIDConnect
from imbi_plugin_oidc.provider import clear_caches
from imbi_plugin_sdk import (
    CodeExchange,
    IdentityExpired,
    IdentityProviderError,
    IdentityProviderUnavailable,
    IdentityRevoked,
    IdTokenAudienceMismatch,
    IdTokenExpired,
    IdTokenIssuerMismatch,
    IdTokenNonceMismatch,
    IdTokenSignatureInvalid,
    InvalidGrant,
    MemoryLogSink,
    PluginError,
    TokenSet,
)
from imbi_plugin_sdk.testkit import call_as_host, make_context

TOKEN_PATH = "/oauth2/token"


def swap_id_token(replacement: str) -> Callable[[str, int, bytes], tuple[int, bytes]]:
    def tamper(path: str, status: int, body: bytes) -> tuple[int, bytes]:
        if path == TOKEN_PATH and status == 200:
            data = json.loads(body)
            data["id_token"] = replacement
            return status, json.dumps(data).encode()
        return status, body

    return tamper


class Run:
    """One connection attempt through the host's JSON contract, keeping every secret seen
    (by the proxy: every token the provider issued) and every log line."""

    def __init__(self, proxy: Any, idp: Any, caplog: pytest.LogCaptureFixture, **settings: Any):
        self.proxy, self.idp, self.caplog = proxy, idp, caplog
        self.sink = MemoryLogSink()
        self.context = make_context(service_settings={"issuer": proxy.url, **settings})
        self.secrets: list[str] = [idp.client_secret]

    def call(self, method: str, *args: object) -> Any:
        credentials = {"client_id": self.idp.client_id, "client_secret": self.idp.client_secret}
        return call_as_host(
            OpenIDConnect, method, *args, context=self.context, credentials=credentials,
            log=self.sink,
        )  # fmt: skip

    def login(self, *, nonce: str | None = None) -> CodeExchange:
        """The user's browser: to the plugin's authorization URL, log in, back with a code."""
        start, pair = self.idp.new_start()
        callback = self.idp.follow(self.call("begin_authorization", start).url)
        self.secrets += [callback.code, pair.verifier]
        return CodeExchange(
            code=callback.code,
            redirect_uri=start.redirect_uri,
            code_verifier=pair.verifier,
            nonce=nonce or start.nonce,
        )

    def connect(self, *, nonce: str | None = None) -> TokenSet:
        tokens: TokenSet = self.call("exchange_code", self.login(nonce=nonce))
        return tokens

    def exchange_refused(
        self, error: type[PluginError], *, nonce: str | None = None
    ) -> PluginError:
        exchange = self.login(nonce=nonce)
        return self.refused(error, lambda: self.call("exchange_code", exchange))

    def refused(self, error: type[PluginError], action: Callable[[], object]) -> PluginError:
        self.caplog.clear()  # from here on: what this process logs while the plugin works
        with self.caplog.at_level(logging.DEBUG):
            with pytest.raises(error) as caught:
                action()
        self.assert_no_secret(caught.value)
        return caught.value

    def assert_no_secret(self, error: PluginError) -> None:
        for body in self.proxy.seen:
            try:
                data = json.loads(body)
            except ValueError:
                continue
            if isinstance(data, dict):
                for name in ("access_token", "refresh_token", "id_token"):
                    if isinstance(data.get(name), str):
                        self.secrets.append(data[name])
        # The provider's own log lines are not ours: in production it is another machine.
        ours = [
            record.getMessage()
            for record in self.caplog.records
            if not record.name.startswith(("oidc_provider_mock", "werkzeug", "authlib"))
        ]
        shown = [str(error), json.dumps(error.to_dict()), *self.sink.messages, *ours]
        for secret in self.secrets:
            for text in shown:
                assert secret not in text, f"a secret ({len(secret)} chars) leaked: {text[:200]}"


@pytest.fixture
def run(proxy: Any, idp: Any, caplog: pytest.LogCaptureFixture) -> Callable[..., Run]:
    return lambda **settings: Run(proxy, idp, caplog, **settings)


def test_an_id_token_issued_to_another_client(run: Any, proxy: Any, idp: Any) -> None:
    attempt = run()
    start, _pair = idp.new_start()
    other = idp.direct_tokens(proxy.url, start, client_id="another-client")["id_token"]
    proxy.tamper = swap_id_token(other)
    # The same provider, key and issuer; the nonce is checked after the audience.
    error = attempt.exchange_refused(IdTokenAudienceMismatch)
    assert error.code == "id_token_wrong_audience"


def test_an_id_token_under_another_issuer(run: Any, proxy: Any, provider: Any, idp: Any) -> None:
    attempt = run()
    start, _pair = idp.new_start()
    # The same provider and key, reached under another name: it issues as that host.
    other = idp.direct_tokens(provider.url, start)["id_token"]
    proxy.tamper = swap_id_token(other)
    assert attempt.exchange_refused(IdTokenIssuerMismatch).code == "id_token_wrong_issuer"


def test_an_id_token_with_another_nonce(run: Any) -> None:
    attempt = run()
    error = attempt.exchange_refused(IdTokenNonceMismatch, nonce="n" * 43)
    assert error.code == "id_token_wrong_nonce"


def test_an_id_token_signed_by_another_provider(
    run: Any, proxy: Any, other_provider: Any, idp: Any
) -> None:
    attempt = run()
    start, _pair = idp.new_start()
    other = idp.direct_tokens(other_provider.url, start, host=proxy.url.split("//")[1])
    proxy.tamper = swap_id_token(other["id_token"])
    error = attempt.exchange_refused(IdTokenSignatureInvalid)
    assert error.code == "id_token_bad_signature"


def test_an_id_token_with_altered_signature_bytes(run: Any, proxy: Any) -> None:
    def flip(path: str, status: int, body: bytes) -> tuple[int, bytes]:
        if path == TOKEN_PATH and status == 200:
            data = json.loads(body)
            head, payload, signature = data["id_token"].split(".")
            middle = len(signature) // 2
            swapped = "A" if signature[middle] != "A" else "B"
            data["id_token"] = (
                f"{head}.{payload}.{signature[:middle]}{swapped}{signature[middle + 1 :]}"
            )
            return status, json.dumps(data).encode()
        return status, body

    attempt = run()
    proxy.tamper = flip
    assert attempt.exchange_refused(IdTokenSignatureInvalid).code == "id_token_bad_signature"


def test_an_id_token_that_arrives_expired(short_provider: Any, idp: Any, caplog: Any) -> None:
    clear_caches()
    slow = idp.Proxy(short_provider.url).start()

    def late(path: str, status: int, body: bytes) -> tuple[int, bytes]:
        if path == TOKEN_PATH:
            time.sleep(2.2)  # the token (valid one second) is stale when it arrives
        return status, body

    try:
        slow.tamper = late
        attempt = Run(slow, idp, caplog, clock_skew_seconds=0)
        assert attempt.exchange_refused(IdTokenExpired).code == "id_token_expired"
    finally:
        slow.stop()


def test_an_expired_token_that_cannot_be_refreshed(
    short_provider: Any, idp: Any, caplog: Any
) -> None:
    clear_caches()
    plain = idp.Proxy(short_provider.url).start()
    try:
        attempt = Run(plain, idp, caplog, clock_skew_seconds=5)
        tokens = attempt.connect()
        assert tokens.refresh_token is None  # this provider issues none
        time.sleep(1.5)
        error = attempt.refused(IdentityExpired, lambda: attempt.call("describe", tokens))
        assert error.code == "identity_expired" and error.http_status == 401
    finally:
        plain.stop()


def test_a_revoked_token(run: Any, provider: Any, idp: Any) -> None:
    attempt = run()
    tokens = attempt.connect()
    httpx.post(f"{provider.url}/users/{idp.user}/revoke-tokens").raise_for_status()
    error = attempt.refused(IdentityRevoked, lambda: attempt.call("describe", tokens))
    assert error.code == "identity_revoked"
    grant = attempt.refused(InvalidGrant, lambda: attempt.call("refresh", tokens.refresh_token))
    assert grant.code == "invalid_grant" and grant.http_status == 400


def test_a_code_used_twice_is_invalid_grant(run: Any, idp: Any) -> None:
    attempt = run()
    start, pair = idp.new_start()
    callback = idp.follow(attempt.call("begin_authorization", start).url)
    exchange = CodeExchange(
        code=callback.code, redirect_uri=start.redirect_uri, code_verifier=pair.verifier,
        nonce=start.nonce,
    )  # fmt: skip
    attempt.secrets += [callback.code, pair.verifier]
    attempt.call("exchange_code", exchange)
    assert attempt.refused(InvalidGrant, lambda: attempt.call("exchange_code", exchange))


def test_the_provider_is_down(run: Any, proxy: Any, idp: Any) -> None:
    attempt = run()
    start, _pair = idp.new_start()
    attempt.call("begin_authorization", start)  # discovery is read and cached
    proxy.stop()
    error = attempt.refused(
        IdentityProviderUnavailable, lambda: attempt.call("refresh", "some-refresh-token-value")
    )
    assert error.code == "identity_provider_unavailable" and error.http_status == 503
    attempt.secrets.append("some-refresh-token-value")
    attempt.assert_no_secret(error)
    never = Run(type(proxy)(upstream="", url="http://127.0.0.1:9"), idp, attempt.caplog)
    assert never.refused(
        IdentityProviderUnavailable, lambda: never.call("begin_authorization", start)
    )


@pytest.mark.parametrize("path", [TOKEN_PATH, "/.well-known/openid-configuration", "/jwks"])
def test_malformed_json(run: Any, proxy: Any, path: str) -> None:
    def garble(seen: str, status: int, body: bytes) -> tuple[int, bytes]:
        return (200, b'{"access_token": "tok-') if seen == path else (status, body)

    proxy.tamper = garble
    attempt = run()
    if path == TOKEN_PATH or path == "/jwks":
        error = attempt.exchange_refused(IdentityProviderError)
    else:
        start, _pair = attempt.idp.new_start()
        error = attempt.refused(
            IdentityProviderError, lambda: attempt.call("begin_authorization", start)
        )
    assert error.code == "identity_provider_error" and "not JSON" in str(error)


def test_a_discovery_document_for_another_issuer(run: Any, proxy: Any) -> None:
    def rename(path: str, status: int, body: bytes) -> tuple[int, bytes]:
        if path == "/.well-known/openid-configuration":
            data = json.loads(body)
            data["issuer"] = "https://evil.example.com"
            return status, json.dumps(data).encode()
        return status, body

    proxy.tamper = rename
    attempt = run()
    start, _pair = attempt.idp.new_start()
    error = attempt.refused(
        IdentityProviderError, lambda: attempt.call("begin_authorization", start)
    )
    assert "another issuer" in str(error)


def test_a_token_response_without_an_id_token(run: Any, proxy: Any) -> None:
    def strip(path: str, status: int, body: bytes) -> tuple[int, bytes]:
        if path == TOKEN_PATH and status == 200:
            data = json.loads(body)
            del data["id_token"]
            return status, json.dumps(data).encode()
        return status, body

    proxy.tamper = strip
    attempt = run()
    assert "no id_token" in str(attempt.exchange_refused(IdentityProviderError))


def test_an_unsigned_id_token_is_refused(run: Any, proxy: Any, idp: Any) -> None:
    import base64

    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    start, _pair = idp.new_start()
    real = idp.direct_tokens(proxy.url, start)["id_token"]
    payload = json.loads(base64.urlsafe_b64decode(real.split(".")[1] + "=="))
    proxy.tamper = swap_id_token(f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(payload)}.")
    attempt = run()
    assert attempt.exchange_refused(IdTokenSignatureInvalid)
