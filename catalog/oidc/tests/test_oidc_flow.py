"""The whole flow against a real OpenID provider on loopback, in process and through the
JSON call contract the host uses."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from imbi_plugin_oidc.plugin import OpenIDConnect
from imbi_plugin_sdk import (
    AccessDenied,
    CodeExchange,
    IdentityInfo,
    TokenRevocation,
    TokenSet,
    check_handler_class,
)
from imbi_plugin_sdk.testkit import assert_contract, call_as_host, make_context


def exchange(plugin: OpenIDConnect, idp: Any) -> TokenSet:
    start, pair = idp.new_start()
    redirect = plugin.begin_authorization(start)
    callback = idp.follow(redirect.url)
    assert callback.state == start.state
    return plugin.exchange_code(
        CodeExchange(
            code=callback.code,
            redirect_uri=start.redirect_uri,
            code_verifier=pair.verifier,
            nonce=start.nonce,
        )
    )


def test_manifest_and_entry_point() -> None:
    manifest = check_handler_class(OpenIDConnect)
    assert manifest.slug == "oidc" and manifest.hints.login_capable
    assert manifest.permissions.operator_host_settings == ("issuer",)


def test_the_authorization_url_comes_from_discovery_with_pkce(
    proxy: Any, make_plugin: Any, idp: Any
) -> None:
    start, _pair = idp.new_start()
    redirect = make_plugin(proxy.url).begin_authorization(start)
    assert redirect.url.startswith(f"{proxy.url}/oauth2/authorize?")
    query = redirect.query()
    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] == start.code_challenge
    assert query["nonce"] == start.nonce and query["state"] == start.state
    assert query["client_id"] == idp.client_id
    assert query["scope"] == "openid profile email"


def test_connect_describe_refresh_and_revoke(proxy: Any, make_plugin: Any, idp: Any) -> None:
    plugin = make_plugin(proxy.url)
    tokens = exchange(plugin, idp)
    assert tokens.refresh_token and tokens.id_token and tokens.expires_at is not None
    assert tokens.claims["sub"] == idp.user
    assert tokens.claims["aud"] in (idp.client_id, [idp.client_id])
    assert tokens.claims["iss"] == proxy.url
    assert "nonce" not in tokens.claims
    info = plugin.describe(tokens)
    assert info == IdentityInfo(
        subject=idp.user,
        display_name="Ada Lovelace",
        email="ada@example.com",
        email_verified=True,
        avatar_url="https://avatars.example.com/ada.png",
        scopes=tokens.scopes,
        expires_at=tokens.expires_at,
    )
    refreshed = plugin.refresh(tokens.refresh_token)
    assert refreshed.access_token != tokens.access_token
    assert refreshed.refresh_token
    assert plugin.describe(refreshed).subject == idp.user
    # The provider publishes no revocation endpoint: say so rather than pretend.
    result = plugin.revoke(TokenRevocation(token=refreshed.refresh_token or ""))
    assert result.revoked is False and "no revocation endpoint" in result.message


def test_revocation_endpoint_is_used_when_discovery_names_one(
    proxy: Any, make_plugin: Any, idp: Any, provider: Any
) -> None:
    """The provider revokes a user's tokens at ``/users/<sub>/revoke-tokens``; published as
    the revocation endpoint by rewriting the discovery answer, the plugin calls it."""

    def publish(path: str, status: int, body: bytes) -> tuple[int, bytes]:
        if path == "/.well-known/openid-configuration":
            data = json.loads(body)
            data["revocation_endpoint"] = f"{proxy.url}/users/{idp.user}/revoke-tokens"
            return status, json.dumps(data).encode()
        if path.endswith("/revoke-tokens") and status == 204:
            return 200, b""
        return status, body

    proxy.tamper = publish
    plugin = make_plugin(proxy.url)
    tokens = exchange(plugin, idp)
    assert plugin.revoke(TokenRevocation(token=tokens.refresh_token or "")).revoked
    assert httpx.get(
        f"{provider.url}/userinfo", headers={"Authorization": f"Bearer {tokens.access_token}"}
    ).status_code in (400, 401)  # the provider answers access_denied for an unknown token


def test_declined_at_the_provider_is_access_denied(proxy: Any, make_plugin: Any, idp: Any) -> None:
    start, _pair = idp.new_start()
    with pytest.raises(AccessDenied):
        idp.follow(make_plugin(proxy.url).begin_authorization(start).url, deny=True)


def test_connection_reads_discovery_and_keys(proxy: Any, make_plugin: Any) -> None:
    result = make_plugin(proxy.url).test_connection()
    assert result.ok and result.details["issuer"] == proxy.url
    down = make_plugin("http://127.0.0.1:9").test_connection()
    assert not down.ok and down.details["code"] == "identity_provider_unavailable"


def test_contract_kit_with_real_tokens(proxy: Any, make_plugin: Any, idp: Any) -> None:
    tokens = exchange(make_plugin(proxy.url), idp)
    assert_contract(
        lambda: make_plugin(proxy.url),
        sample_tokens=tokens,
        sample_refresh_token=tokens.refresh_token,
    )


def test_every_method_through_the_hosts_json_contract(
    proxy: Any, make_plugin: Any, idp: Any
) -> None:
    context = make_context(service_settings={"issuer": proxy.url})
    credentials = {"client_id": idp.client_id, "client_secret": idp.client_secret}

    def call(method: str, *args: object) -> Any:
        return call_as_host(OpenIDConnect, method, *args, context=context, credentials=credentials)

    start, pair = idp.new_start()
    callback = idp.follow(call("begin_authorization", start).url)
    tokens = call(
        "exchange_code",
        CodeExchange(
            code=callback.code,
            redirect_uri=start.redirect_uri,
            code_verifier=pair.verifier,
            nonce=start.nonce,
        ),
    )
    assert isinstance(tokens, TokenSet)
    assert call("describe", tokens).email == "ada@example.com"
    refreshed = call("refresh", tokens.refresh_token)
    assert refreshed.refresh_token and refreshed.access_token != tokens.access_token
    assert call("describe", refreshed).subject == idp.user
