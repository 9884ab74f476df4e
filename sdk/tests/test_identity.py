"""Contract 1.3, identity: the models, PKCE, context.identity on the wire, redaction, the kit."""

from __future__ import annotations

import dataclasses
import json
import pickle
from datetime import UTC, datetime, timedelta
from typing import ClassVar
from urllib.parse import urlencode

import pytest
from imbi_plugin_sdk import (
    AccessDenied,
    AuthorizationRedirect,
    AuthorizationResponse,
    AuthorizationStart,
    CodeExchange,
    ConnectionResult,
    DeviceAuthorization,
    DevicePoll,
    IdentityContext,
    IdentityInfo,
    IdentityPlugin,
    IdentityProviderError,
    IdentityRequired,
    InvalidGrant,
    InvalidInput,
    ManifestError,
    MemoryLogSink,
    PkcePair,
    PluginError,
    PluginManifest,
    PluginType,
    RevocationResult,
    TokenRevocation,
    TokenSet,
    check_handler_class,
    pkce_challenge,
)
from imbi_plugin_sdk.errors import SDK_ERROR_CODES, IdTokenAudienceMismatch
from imbi_plugin_sdk.manifest import Hints
from imbi_plugin_sdk.testkit import (
    call_as_host,
    make_context,
    run_contract,
    sample_authorization,
    sample_identity,
)
from imbi_plugin_sdk.wire import Call, Reply, WireError, execute

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ACCESS = "access-token-value-1234567890"
REFRESH = "refresh-token-value-1234567890"


def test_pkce_s256_matches_rfc_7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    pair = PkcePair.generate()
    assert pkce_challenge(pair.verifier) == pair.challenge
    assert pair.verifier not in repr(pair)
    with pytest.raises(InvalidInput, match="code_verifier"):
        pkce_challenge("short")


def test_authorization_start_validates_each_field() -> None:
    start, _pair = sample_authorization()
    assert start.code_challenge_method == "S256"
    assert AuthorizationStart.from_dict(json.loads(json.dumps(start.to_dict()))) == start
    for field, value in (
        ("redirect_uri", "javascript:alert(1)"),
        ("state", "short"),
        ("nonce", "has spaces in it, which is wrong"),
        ("code_challenge", "plain-verifier"),
        ("scopes", ("openid", "openid")),
    ):
        with pytest.raises(InvalidInput) as caught:
            dataclasses.replace(start, **{field: value})
        assert field in caught.value.fields


def test_tokens_never_show_in_repr_and_round_trip() -> None:
    tokens = TokenSet(
        access_token=ACCESS,
        refresh_token=REFRESH,
        id_token="header.payload.signature",
        expires_at=NOW + timedelta(hours=1),
        scopes=("openid", "email"),
        claims={"sub": "u1", "email": "u1@example.com"},
    )
    text = repr(tokens)
    assert ACCESS not in text and REFRESH not in text and "signature" not in text
    assert TokenSet.from_dict(json.loads(json.dumps(tokens.to_dict()))) == tokens
    assert tokens.secret_values() == [ACCESS, REFRESH, "header.payload.signature"]
    assert not tokens.expired(NOW) and tokens.expired(NOW + timedelta(hours=2))
    exchange = CodeExchange(
        code="the-code",
        redirect_uri="https://imbi.example/cb",
        code_verifier="v" * 43,
        nonce="n" * 16,
    )
    assert "the-code" not in repr(exchange) and "v" * 43 not in repr(exchange)
    with pytest.raises(InvalidInput, match="expires_at"):
        TokenSet(access_token=ACCESS, expires_at=datetime(2026, 1, 1))


def test_other_identity_models_round_trip() -> None:
    models = [
        AuthorizationRedirect(url="https://idp.example/authorize?client_id=a"),
        TokenRevocation(token=REFRESH),
        RevocationResult(revoked=False, message="the provider has no revocation endpoint"),
        IdentityInfo(
            subject="u1",
            display_name="Ada",
            email="ada@example.com",
            email_verified=True,
            avatar_url="https://idp.example/ada.png",
            scopes=("openid",),
            expires_at=NOW,
        ),
        DeviceAuthorization(
            device_code="device-code-value",
            user_code="ABCD-EFGH",
            verification_uri="https://idp.example/device",
            expires_at=NOW,
        ),
        DevicePoll(status="pending"),
        DevicePoll(status="complete", tokens=TokenSet(access_token=ACCESS)),
    ]
    for model in models:
        assert type(model).from_dict(json.loads(json.dumps(model.to_dict()))) == model
    with pytest.raises(InvalidInput, match="tokens"):
        DevicePoll(status="complete")
    with pytest.raises(InvalidInput, match="avatar_url"):
        IdentityInfo(subject="u1", avatar_url="not a url")


def test_callback_parsing_maps_provider_errors_to_codes() -> None:
    response = AuthorizationResponse.parse({"code": "abc", "state": "s" * 20})
    assert response.code == "abc" and "abc" not in repr(response)
    with pytest.raises(AccessDenied):
        AuthorizationResponse.parse({"error": "access_denied", "state": "s" * 20})
    with pytest.raises(IdentityProviderError, match="server_error"):
        AuthorizationResponse.parse({"error": "server_error", "error_description": "<b>x</b>"})
    with pytest.raises(IdentityProviderError, match="an unknown error") as caught:
        AuthorizationResponse.parse({"error": "<script>"})
    assert "<script>" not in str(caught.value)
    with pytest.raises(IdentityProviderError, match="no code"):
        AuthorizationResponse.parse({"state": "s" * 20})


def test_identity_context_hides_the_token_and_refuses_pickling() -> None:
    identity = sample_identity(access_token=ACCESS)
    assert ACCESS not in repr(identity) and ACCESS not in str(identity)
    assert identity.authorization_header() == {"Authorization": f"Bearer {ACCESS}"}
    with pytest.raises(TypeError):
        pickle.dumps(identity)
    with pytest.raises(AttributeError):
        identity.plugin = "other"  # type: ignore[misc]
    assert IdentityContext.from_dict(identity.to_dict()) == identity
    with pytest.raises(InvalidInput, match="unknown field"):
        IdentityContext.from_dict({**identity.to_dict(), "refresh_token": "x"})
    context = make_context(identity=identity)
    assert "identity" not in context.to_dict()  # travels beside the credentials, never inside
    assert ACCESS not in repr(context)


def test_new_error_codes_cross_the_wire_with_their_fields() -> None:
    for code in (
        "identity_required",
        "identity_provider_error",
        "identity_provider_unavailable",
        "invalid_grant",
        "access_denied",
        "identity_expired",
        "identity_revoked",
        "id_token_bad_signature",
        "id_token_wrong_issuer",
        "id_token_wrong_audience",
        "id_token_wrong_nonce",
        "id_token_expired",
        "ref_not_found",
    ):
        assert code in SDK_ERROR_CODES
    error = IdentityRequired("connect first", connect_url="/me/connections/oidc", plugin="oidc")
    reply = Reply.from_json(Reply.failure(error).to_json())
    with pytest.raises(IdentityRequired) as caught:
        reply.unwrap("list_refs")
    assert caught.value.connect_url == "/me/connections/oidc"
    assert caught.value.http_status == 403
    bad = Reply(error={"code": "identity_required", "detail": "", "connect_url": "javascript:x"})
    with pytest.raises(PluginError) as refused:
        bad.unwrap("list_refs")
    assert refused.value.code == "plugin_failed"
    assert isinstance(
        PluginError.from_dict({"code": "id_token_wrong_audience"}), IdTokenAudienceMismatch
    )


# --------------------------------------------------------------------------- a plugin


class Demo(IdentityPlugin):
    """A tiny identity plugin that misbehaves on request: it echoes and logs its inputs."""

    manifest: ClassVar[PluginManifest] = PluginManifest(
        slug="demo-identity",
        name="Demo identity",
        description="",
        version="1.0.0",
        api_version="1.3",
        plugin_type=PluginType.IDENTITY,
        hints=Hints(login_capable=True),
    )

    def test_connection(self) -> ConnectionResult:
        return ConnectionResult.success()

    def begin_authorization(self, start: AuthorizationStart) -> AuthorizationRedirect:
        query = {
            "response_type": "code",
            "client_id": "demo",
            "redirect_uri": start.redirect_uri,
            "state": start.state,
            "nonce": start.nonce,
            "code_challenge": start.code_challenge,
            "code_challenge_method": start.code_challenge_method,
        }
        return AuthorizationRedirect(url=f"https://idp.example/authorize?{urlencode(query)}")

    def exchange_code(self, exchange: CodeExchange) -> TokenSet:
        self.context.logger.info("exchanging %s with %s", exchange.code, exchange.code_verifier)
        raise InvalidGrant(f"code {exchange.code} was refused")

    def refresh(self, refresh_token: str) -> TokenSet:
        self.context.logger.info("refreshing with %s", refresh_token)
        raise RuntimeError(f"boom {refresh_token}")

    def revoke(self, revocation: TokenRevocation) -> RevocationResult:
        return RevocationResult(revoked=True)

    def describe(self, tokens: TokenSet) -> IdentityInfo:
        return IdentityInfo(subject="u1", email="u1@example.com", scopes=tokens.scopes)


def test_the_kit_checks_an_identity_plugin() -> None:
    report = run_contract(
        lambda: Demo(make_context(), {}),
        sample_tokens=TokenSet(access_token=ACCESS),  # type: ignore[arg-type]
    )
    assert report.passed, report.failures
    assert any("begin_authorization" in check for check in report.checks)


def test_the_kit_catches_a_url_without_pkce() -> None:
    class NoPkce(Demo):
        def begin_authorization(self, start: AuthorizationStart) -> AuthorizationRedirect:
            return AuthorizationRedirect(url=f"https://idp.example/a?state={start.state}")

    report = run_contract(lambda: NoPkce(make_context(), {}))  # type: ignore[arg-type]
    assert not report.passed
    assert any("code_challenge" in failure for failure in report.failures)


def test_secret_arguments_are_redacted_from_errors_and_logs() -> None:
    sink = MemoryLogSink()
    start, pair = sample_authorization()
    exchange = CodeExchange(
        code="secret-code-123",
        redirect_uri=start.redirect_uri,
        code_verifier=pair.verifier,
        nonce=start.nonce,
    )
    with pytest.raises(InvalidGrant) as caught:
        call_as_host(Demo, "exchange_code", exchange, log=sink)
    assert "secret-code-123" not in str(caught.value)
    with pytest.raises(PluginError) as failed:
        call_as_host(Demo, "refresh", REFRESH, log=sink)
    assert failed.value.code == "plugin_failed"
    logged = "\n".join(sink.messages)
    assert "refreshing with ***" in logged
    for secret in ("secret-code-123", pair.verifier, REFRESH):
        assert secret not in logged


def test_requires_identity_needs_1_3_and_a_slug() -> None:
    with pytest.raises(ManifestError, match="identity plugins cannot require"):
        dataclasses.replace(Demo.manifest, requires_identity="oidc")
    base = dict(slug="demo-logs", name="Demo", description="", version="1.0.0", plugin_type="logs")
    with pytest.raises(ManifestError, match=r"requires_identity: needs api_version 1\.3"):
        PluginManifest(api_version="1.2", requires_identity="oidc", **base)  # type: ignore[arg-type]
    with pytest.raises(ManifestError, match="not a slug"):
        PluginManifest(api_version="1.3", requires_identity="Not A Slug", **base)  # type: ignore[arg-type]
    manifest = PluginManifest(api_version="1.3", requires_identity="*", **base)  # type: ignore[arg-type]
    assert PluginManifest.from_dict(manifest.to_dict()) == manifest
    plain = PluginManifest(api_version="1.2", **base)  # type: ignore[arg-type]
    assert "requires_identity" not in plain.to_dict()  # 1.2 manifests keep their 1.2 shape
    assert "login_capable" not in plain.to_dict()["hints"]
    with pytest.raises(ManifestError, match=r"hints\.login_capable"):
        PluginManifest(api_version="1.3", hints=Hints(login_capable=True), **base)  # type: ignore[arg-type]


def test_device_flow_hint_needs_the_methods() -> None:
    class Claims(Demo):
        manifest = dataclasses.replace(Demo.manifest, hints=Hints(supports_device_flow=True))

    with pytest.raises(ManifestError, match="device-flow methods are not overridden"):
        check_handler_class(Claims)
    assert check_handler_class(Demo).slug == "demo-identity"


def test_call_carries_identity_only_as_its_own_field() -> None:
    identity = sample_identity("oidc", access_token=ACCESS)
    call = Call.build(
        "x", "test_connection", context=make_context(identity=identity), credentials={}
    )
    assert call.identity is not None and ACCESS not in repr(call)
    data = json.loads(call.to_json())
    assert data["identity"]["access_token"] == ACCESS and "identity" not in data["context"]
    assert ACCESS in call.secret_values()
    plain = Call.build("x", "test_connection", context=make_context(), credentials={})
    assert "identity" not in json.loads(plain.to_json())  # the 1.2 envelope, unchanged
    with pytest.raises(WireError, match="identity"):
        Call.from_dict({**data, "identity": {"plugin": "oidc"}})


def test_execute_hands_identity_only_to_plugins_that_require_it() -> None:
    from imbi_plugin_sdk import LogQuery, LogResult, LogsPlugin

    seen: list[object] = []

    class Reader(LogsPlugin):
        manifest = PluginManifest(
            slug="reader",
            name="Reader",
            description="",
            version="1.0.0",
            api_version="1.3",
            plugin_type=PluginType.LOGS,
            requires_identity="oidc",
        )

        def test_connection(self) -> ConnectionResult:
            seen.append(self.context.identity)
            if self.context.identity is not None:
                self.context.logger.info("token %s", self.context.identity.access_token)
            return ConnectionResult.success()

        def search(self, query: LogQuery) -> LogResult:
            return LogResult()

    class Plain(Reader):
        manifest = dataclasses.replace(Reader.manifest, requires_identity="")

    sink = MemoryLogSink()
    mine = sample_identity("oidc", access_token=ACCESS)
    context = make_context(identity=mine)
    assert call_as_host(Reader, "test_connection", context=context, log=sink).ok
    assert seen[-1] == mine
    assert "token ***" in sink.messages[-1] and ACCESS not in "".join(sink.messages)
    assert call_as_host(Plain, "test_connection", context=context).ok
    assert seen[-1] is None  # a plugin that does not require identity never sees one
    with pytest.raises(IdentityRequired):
        call_as_host(Reader, "test_connection", context=make_context())
    other = make_context(identity=sample_identity("github", access_token=ACCESS))
    with pytest.raises(PluginError) as wrong:
        call_as_host(Reader, "test_connection", context=other)
    assert wrong.value.code == "plugin_failed" and ACCESS not in str(wrong.value)
    report = run_contract(lambda: Reader(context, {}))  # type: ignore[arg-type]
    assert report.passed, report.failures
    assert any("identity_required" in check for check in report.checks)
    reply = execute(
        Call.build("reader", "test_connection", context=make_context(), credentials={}), Reader
    )
    assert reply.error is not None and reply.error["code"] == "identity_required"
