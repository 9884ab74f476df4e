"""Talking to an OpenID provider: discovery, JWKS, JSON requests and ID-token verification.

Every failure becomes an SDK error with its own code, and no message built here carries a
token, a code or a client secret: messages name the endpoint and the reason, never a value.

- ``Provider(issuer, timeout)`` fetches ``/.well-known/openid-configuration`` (cached per
  issuer for ``DISCOVERY_TTL`` seconds) and refuses a document whose ``issuer`` is not the
  configured one (OpenID Connect Discovery §4.3).
- ``request_json`` maps transport and HTTP outcomes: unreachable or 5xx →
  ``identity_provider_unavailable``; a timeout → ``plugin_timeout``; a body that is not a
  JSON object → ``identity_provider_error``; OAuth ``error`` answers → ``invalid_grant``,
  ``access_denied``, ``credentials_invalid`` (``invalid_client``) or
  ``identity_provider_error``.
- ``verify_id_token`` checks the signature against the provider's JWKS (one refetch when
  the key id is unknown: key rotation), the algorithm (asymmetric only, never ``none``),
  issuer, audience (and ``azp``), expiry and nonce; each failure has its own code.
"""

from __future__ import annotations

import hmac
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx
import jwt
from imbi_plugin_sdk import (
    AccessDenied,
    CredentialsInvalid,
    IdentityProviderError,
    IdentityProviderUnavailable,
    IdTokenAudienceMismatch,
    IdTokenExpired,
    IdTokenInvalid,
    IdTokenIssuerMismatch,
    IdTokenNonceMismatch,
    IdTokenSignatureInvalid,
    InvalidGrant,
    PluginTimeout,
)

__all__ = [
    "ALGORITHMS",
    "DISCOVERY_TTL",
    "Provider",
    "clear_caches",
    "oauth_error",
    "verify_id_token",
]

DISCOVERY_TTL = 300.0
"""Seconds a discovery document or JWKS is reused before it is fetched again."""

ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""Asymmetric signature algorithms accepted for ID tokens (never ``none`` or HMAC)."""

_OAUTH_ERROR_RE = re.compile(r"^[a-z_]{1,64}$")
_lock = threading.Lock()
_discovery: dict[str, tuple[float, dict[str, Any]]] = {}
_jwks: dict[str, tuple[float, jwt.PyJWKSet]] = {}


def clear_caches() -> None:
    """Forget every cached discovery document and key set (tests, key rotation)."""
    with _lock:
        _discovery.clear()
        _jwks.clear()


def oauth_error(body: Any) -> str:
    """The OAuth ``error`` code of a response body, if it is a safe token ("" otherwise)."""
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, str) and _OAUTH_ERROR_RE.match(error):
            return error
    return ""


class Provider:
    """One OpenID provider, as configured: its issuer URL and the call's deadline."""

    def __init__(self, issuer: str, *, timeout: float) -> None:
        if not re.match(r"^https?://[^\s/?#]+", issuer or ""):
            raise IdentityProviderError("the service's issuer setting is not an http(s) URL")
        self.issuer = issuer.rstrip("/")
        self.timeout = timeout

    # ------------------------------------------------------------------ transport

    def request_json(
        self,
        method: str,
        url: str,
        *,
        what: str,
        data: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        bearer: str = "",
    ) -> tuple[int, Any]:
        """``(status, body)`` of a JSON request; transport failures and 5xx raise."""
        headers = {"Accept": "application/json"}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        try:
            with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
                response = client.request(method, url, data=data, auth=auth, headers=headers)
        except httpx.TimeoutException:
            raise PluginTimeout(f"the identity provider's {what} did not answer in time") from None
        except httpx.HTTPError:
            raise IdentityProviderUnavailable(
                f"the identity provider's {what} cannot be reached"
            ) from None
        if response.status_code >= 500:
            raise IdentityProviderUnavailable(
                f"the identity provider's {what} answered HTTP {response.status_code}"
            )
        if not response.content:
            return response.status_code, None
        try:
            body = response.json()
        except (ValueError, UnicodeDecodeError):
            raise IdentityProviderError(
                f"the identity provider's {what} answered something that is not JSON"
            ) from None
        return response.status_code, body

    def token_request(
        self, form: Mapping[str, str], *, client_id: str, client_secret: str, what: str
    ) -> dict[str, Any]:
        """POST to the token endpoint with client authentication; the JSON object answered,
        or the OAuth error mapped to its SDK error."""
        endpoint = self.endpoint("token_endpoint")
        data = dict(form)
        auth = None
        if client_secret:
            auth = (client_id, client_secret)  # client_secret_basic
        else:
            data["client_id"] = client_id  # a public client
        status, body = self.request_json("POST", endpoint, what=what, data=data, auth=auth)
        error = oauth_error(body)
        if status >= 400 or error:
            raise _token_error(error, status, what)
        if not isinstance(body, dict):
            raise IdentityProviderError(f"the identity provider's {what} is not a JSON object")
        return body

    # ------------------------------------------------------------------ discovery

    def discovery(self) -> dict[str, Any]:
        """The provider's metadata, fetched once per ``DISCOVERY_TTL``."""
        now = time.monotonic()
        with _lock:
            cached = _discovery.get(self.issuer)
        if cached is not None and now - cached[0] < DISCOVERY_TTL:
            return cached[1]
        url = f"{self.issuer}/.well-known/openid-configuration"
        status, body = self.request_json("GET", url, what="discovery document")
        if status != 200 or not isinstance(body, dict):
            raise IdentityProviderError(
                f"the identity provider's discovery document answered HTTP {status}"
            )
        if str(body.get("issuer", "")).rstrip("/") != self.issuer:
            raise IdentityProviderError(
                "the discovery document names another issuer than the configured one"
            )
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(body.get(name), str) or not body[name].startswith(
                ("https://", "http://")
            ):
                raise IdentityProviderError(f"the discovery document has no {name}")
        with _lock:
            _discovery[self.issuer] = (now, body)
        return body

    def endpoint(self, name: str) -> str:
        """An endpoint URL of the discovery document ("" when it does not offer it)."""
        value = self.discovery().get(name)
        return value if isinstance(value, str) and value.startswith(("https://", "http://")) else ""

    # ------------------------------------------------------------------ keys

    def _key_set(self, *, refresh: bool) -> jwt.PyJWKSet:
        uri = self.endpoint("jwks_uri")
        now = time.monotonic()
        with _lock:
            cached = _jwks.get(uri)
        if cached is not None and not refresh and now - cached[0] < DISCOVERY_TTL:
            return cached[1]
        status, body = self.request_json("GET", uri, what="key set")
        if status != 200 or not isinstance(body, dict):
            raise IdentityProviderError(f"the identity provider's key set answered HTTP {status}")
        try:
            keys = jwt.PyJWKSet.from_dict(body)
        except jwt.PyJWTError:
            raise IdentityProviderError(
                "the identity provider's key set has no usable key"
            ) from None
        with _lock:
            _jwks[uri] = (now, keys)
        return keys

    def signing_key(self, kid: str | None) -> jwt.PyJWK:
        """The provider's key for ``kid``; the key set is fetched again once if unknown."""
        for refresh in (False, True):
            keys = self._key_set(refresh=refresh)
            for key in keys.keys:
                if kid is None or key.key_id == kid:
                    return key
        raise IdTokenSignatureInvalid(
            "the ID token is signed with a key the provider does not publish"
        )


def _token_error(error: str, status: int, what: str) -> Exception:
    if error == "invalid_grant":
        return InvalidGrant(f"the identity provider refused the grant in the {what}")
    if error == "access_denied":
        return AccessDenied(f"the identity provider denied the {what}")
    if error in ("invalid_client", "unauthorized_client") or status == 401:
        return CredentialsInvalid("the identity provider refused the client ID or secret")
    shown = error or f"HTTP {status}"
    return IdentityProviderError(f"the identity provider's {what} answered {shown}")


def verify_id_token(
    provider: Provider,
    id_token: str,
    *,
    client_id: str,
    nonce: str | None,
    leeway: float,
) -> dict[str, Any]:
    """The claims of ``id_token`` once every check has passed (see the module docstring)."""
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError:
        raise IdTokenInvalid("the ID token is not a well-formed JWT") from None
    algorithm = header.get("alg")
    offered = provider.discovery().get("id_token_signing_alg_values_supported")
    if (
        not isinstance(algorithm, str)
        or algorithm not in ALGORITHMS
        or (isinstance(offered, list) and algorithm not in offered)
    ):
        raise IdTokenSignatureInvalid("the ID token uses a signature algorithm that is not allowed")
    kid = header.get("kid")
    key = provider.signing_key(kid if isinstance(kid, str) else None)
    issuer = str(provider.discovery()["issuer"])
    try:
        claims: dict[str, Any] = jwt.decode(
            id_token,
            key=key,
            algorithms=[algorithm],
            audience=client_id,
            issuer=issuer,
            leeway=leeway,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
    except jwt.InvalidSignatureError:
        raise IdTokenSignatureInvalid("the ID token's signature does not verify") from None
    except jwt.ExpiredSignatureError:
        raise IdTokenExpired("the ID token has expired") from None
    except jwt.InvalidAudienceError:
        raise IdTokenAudienceMismatch("the ID token was issued to another client") from None
    except jwt.InvalidIssuerError:
        raise IdTokenIssuerMismatch("the ID token was issued by another issuer") from None
    except jwt.PyJWTError as exc:
        raise IdTokenInvalid(f"the ID token is not valid ({type(exc).__name__})") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise IdTokenAudienceMismatch("the ID token's authorized party is another client")
    if nonce is not None:
        got = claims.get("nonce")
        if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
            raise IdTokenNonceMismatch("the ID token's nonce is not the one this sign-in sent")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise IdTokenInvalid("the ID token has no subject")
    return claims
