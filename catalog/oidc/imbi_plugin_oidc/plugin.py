"""``oidc``: connect a person's account at any OpenID Connect provider.

Authorization code flow with PKCE (S256), state and nonce (the host makes and keeps them);
the code exchange and refresh verify the ID token fully (``provider.verify_id_token``);
``describe`` reads the userinfo endpoint and checks its subject against the ID token's;
``revoke`` uses the provider's RFC 7009 endpoint when discovery names one.

Settings (the service's, chosen by the operator): ``issuer`` (the provider's issuer URL;
discovery is read from it), ``scopes`` (default ``openid profile email``) and
``clock_skew_seconds`` (leeway for ``exp``/``iat``, default 60). Credentials: the client's
``client_id`` and, for a confidential client, ``client_secret`` (sent with HTTP Basic).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from imbi_plugin_sdk import (
    AuthorizationRedirect,
    AuthorizationStart,
    CodeExchange,
    ConnectionResult,
    CredentialField,
    Hints,
    IdentityExpired,
    IdentityInfo,
    IdentityPlugin,
    IdentityProviderError,
    IdentityRevoked,
    OptionField,
    OptionType,
    Permissions,
    PluginError,
    PluginManifest,
    PluginType,
    RevocationResult,
    ServiceTemplate,
    TokenRevocation,
    TokenSet,
)

from . import __version__
from .provider import Provider, oauth_error, verify_id_token

DEFAULT_SCOPES = "openid profile email"
_URL_PATTERN = r"https?://[^\s/?#]+(/[^\s?#]*)?"


class OpenIDConnect(IdentityPlugin):
    manifest = PluginManifest(
        slug="oidc",
        name="OpenID Connect",
        description=(
            "Connect people's accounts at any OpenID Connect provider: discovery, PKCE, "
            "refresh, revocation, userinfo, ID tokens verified with the provider's keys."
        ),
        version=__version__,
        api_version="1.3",
        plugin_type=PluginType.IDENTITY,
        publisher="Imbi",
        homepage="https://openid.net/developers/how-connect-works/",
        credentials=(
            CredentialField(
                name="client_id",
                label="Client ID",
                secret=False,
                help="The client registered at the provider for this platform.",
            ),
            CredentialField(
                name="client_secret",
                label="Client secret",
                required=False,
                help="For a confidential client; leave empty for a public client (PKCE only).",
            ),
        ),
        # The issuer is the operator's choice; discovery and its endpoints are read there.
        permissions=Permissions(operator_host_settings=("issuer",)),
        hints=Hints(login_capable=True),
        service_template=ServiceTemplate(
            vendor="openid",
            name="OpenID Connect provider",
            category="identity",
            icon="imbi_plugin_oidc:icon.svg",
            links=(
                ("OpenID Connect Core", "https://openid.net/specs/openid-connect-core-1_0.html"),
            ),
            settings={"scopes": DEFAULT_SCOPES, "clock_skew_seconds": 60},
            setting_fields=(
                OptionField(
                    name="issuer",
                    label="Issuer URL",
                    required=True,
                    pattern=_URL_PATTERN,
                    pattern_help="an http(s) URL such as https://login.example.com",
                    help="The provider's issuer; /.well-known/openid-configuration is read there.",
                ),
                OptionField(
                    name="scopes",
                    label="Scopes",
                    default=DEFAULT_SCOPES,
                    help="Requested when a connection does not ask for its own.",
                ),
                OptionField(
                    name="clock_skew_seconds",
                    label="Clock skew (seconds)",
                    type=OptionType.INTEGER,
                    default=60,
                    min=0,
                    max=300,
                    help="Leeway when checking an ID token's expiry and issue time.",
                ),
            ),
        ),
    )

    # ------------------------------------------------------------------ helpers

    def _provider(self) -> Provider:
        return Provider(
            str(self.context.service_settings.get("issuer", "")), timeout=self.context.timeout
        )

    def _client(self) -> tuple[str, str]:
        return self.credentials.get("client_id", ""), self.credentials.get("client_secret", "")

    def _leeway(self) -> float:
        value = self.context.service_settings.get("clock_skew_seconds", 60)
        return float(value) if isinstance(value, int) and 0 <= value <= 300 else 60.0

    def _token_set(
        self, body: dict[str, Any], *, nonce: str | None, previous: str | None
    ) -> TokenSet:
        provider = self._provider()
        client_id, _secret = self._client()
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise IdentityProviderError("the token response has no access_token")
        if str(body.get("token_type", "")).lower() != "bearer":
            raise IdentityProviderError("the token response is not a Bearer token")
        id_token = body.get("id_token")
        claims: dict[str, Any] = {}
        if isinstance(id_token, str) and id_token:
            claims = verify_id_token(
                provider, id_token, client_id=client_id, nonce=nonce, leeway=self._leeway()
            )
        elif nonce is not None:  # the code flow with the openid scope must return one
            raise IdentityProviderError("the token response has no id_token")
        else:
            id_token = None
        expires_in = body.get("expires_in")
        expires_at = None
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            expires_at = datetime.now(UTC) + timedelta(seconds=max(0, int(expires_in)))
        refresh = body.get("refresh_token")
        scope = body.get("scope")
        return TokenSet(
            access_token=access,
            refresh_token=refresh if isinstance(refresh, str) and refresh else previous,
            id_token=id_token,
            expires_at=expires_at,
            scopes=tuple(dict.fromkeys(scope.split())) if isinstance(scope, str) else (),
            claims={k: v for k, v in claims.items() if k not in ("nonce", "at_hash", "c_hash")},
        )

    # ------------------------------------------------------------------ interface

    def test_connection(self) -> ConnectionResult:
        client_id, _secret = self._client()
        if not client_id:
            return ConnectionResult.problem("no client ID is configured")
        try:
            provider = self._provider()
            provider.discovery()
            provider.signing_key(None)
        except PluginError as exc:
            return ConnectionResult.problem(str(exc), code=exc.code)
        return ConnectionResult.success("discovery and keys read", issuer=provider.issuer)

    def begin_authorization(self, start: AuthorizationStart) -> AuthorizationRedirect:
        client_id, _secret = self._client()
        endpoint = self._provider().endpoint("authorization_endpoint")
        scopes = (
            list(start.scopes)
            or str(self.context.service_settings.get("scopes") or DEFAULT_SCOPES).split()
        )
        if "openid" not in scopes:
            scopes.insert(0, "openid")
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": start.redirect_uri,
            "scope": " ".join(scopes),
            "state": start.state,
            "nonce": start.nonce,
            "code_challenge": start.code_challenge,
            "code_challenge_method": start.code_challenge_method,
        }
        if start.login_hint:
            query["login_hint"] = start.login_hint
        parts = urlsplit(endpoint)
        joined = f"{parts.query}&{urlencode(query)}" if parts.query else urlencode(query)
        return AuthorizationRedirect(url=urlunsplit(parts._replace(query=joined)))

    def exchange_code(self, exchange: CodeExchange) -> TokenSet:
        client_id, secret = self._client()
        body = self._provider().token_request(
            {
                "grant_type": "authorization_code",
                "code": exchange.code,
                "redirect_uri": exchange.redirect_uri,
                "code_verifier": exchange.code_verifier,
            },
            client_id=client_id,
            client_secret=secret,
            what="code exchange",
        )
        return self._token_set(body, nonce=exchange.nonce, previous=None)

    def refresh(self, refresh_token: str) -> TokenSet:
        client_id, secret = self._client()
        body = self._provider().token_request(
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
            client_id=client_id,
            client_secret=secret,
            what="refresh",
        )
        # A refreshed ID token carries no nonce (OpenID Connect Core §12.2).
        return self._token_set(body, nonce=None, previous=refresh_token)

    def revoke(self, revocation: TokenRevocation) -> RevocationResult:
        provider = self._provider()
        endpoint = provider.endpoint("revocation_endpoint")
        if not endpoint:
            return RevocationResult(
                revoked=False, message="the provider has no revocation endpoint"
            )
        client_id, secret = self._client()
        data = {"token": revocation.token, "token_type_hint": revocation.token_type_hint}
        auth = (client_id, secret) if secret else None
        if auth is None:
            data["client_id"] = client_id
        status, _body = provider.request_json(
            "POST", endpoint, what="revocation endpoint", data=data, auth=auth
        )
        if status != 200:
            raise IdentityProviderError(
                f"the identity provider's revocation answered HTTP {status}"
            )
        return RevocationResult(revoked=True, message="revoked at the provider")

    def describe(self, tokens: TokenSet) -> IdentityInfo:
        if tokens.expired(datetime.now(UTC)):
            raise IdentityExpired("the access token has expired; refresh it or connect again")
        provider = self._provider()
        endpoint = provider.endpoint("userinfo_endpoint")
        claims: dict[str, Any] = dict(tokens.claims)
        if endpoint:
            status, body = provider.request_json(
                "GET", endpoint, what="userinfo endpoint", bearer=tokens.access_token
            )
            if status == 401 or (
                status in (400, 403) and oauth_error(body) in ("invalid_token", "access_denied")
            ):
                raise IdentityRevoked("the provider no longer accepts this access token")
            if status != 200 or not isinstance(body, dict):
                raise IdentityProviderError(
                    f"the identity provider's userinfo answered HTTP {status}"
                )
            if claims.get("sub") not in (None, body.get("sub")):
                raise IdentityProviderError("the userinfo subject is not the ID token's subject")
            claims.update(body)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise IdentityProviderError("the provider did not say who the user is")
        picture = claims.get("picture")
        return IdentityInfo(
            subject=subject,
            display_name=_text(claims.get("name") or claims.get("preferred_username")),
            email=_text(claims.get("email")) if "@" in _text(claims.get("email")) else "",
            email_verified=claims.get("email_verified") is True,
            avatar_url=picture
            if isinstance(picture, str) and picture.startswith("https://")
            else "",
            scopes=tokens.scopes,
            expires_at=tokens.expires_at,
        )


def _text(value: object) -> str:
    return value[:255] if isinstance(value, str) else ""
