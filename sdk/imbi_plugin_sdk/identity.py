"""Identity models (contract 1.3): what an ``IdentityPlugin`` takes and returns, and what a
plugin with ``requires_identity`` receives as ``context.identity``.

The flow (the host drives it; the plugin only talks to the provider):

1. The host makes a ``state``, a ``nonce`` and a PKCE pair (``PkcePair.generate()``), keeps
   the verifier server-side, and calls ``begin_authorization(AuthorizationStart(...))``; the
   plugin answers the provider's URL (``AuthorizationRedirect``). Only S256 is used.
2. The provider redirects back to the host with ``code`` and ``state`` (or ``error``:
   ``AuthorizationResponse.parse`` turns the query into a code or raises ``AccessDenied`` /
   ``IdentityProviderError``). The host checks the state itself.
3. ``exchange_code(CodeExchange(...))`` returns a ``TokenSet``: tokens, expiry, scopes and
   the *verified* ID-token claims. ``refresh(refresh_token)`` returns the next one.
4. ``describe(tokens)`` returns the ``IdentityInfo`` (subject, name, email, avatar, scopes,
   expiry); ``revoke(TokenRevocation)`` ends a token at the provider.
5. Where the provider offers it, the device flow: ``start_device_authorization`` and
   ``poll_device_authorization(device_code)``.

Every model validates on construction (``InvalidInput`` naming the field) and has a
lossless ``to_dict()``/``from_dict()``. Token values are never in a ``repr``; models that carry
one list it in ``secret_values()`` so the host and ``wire.execute`` can redact it.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NoReturn, Self
from urllib.parse import parse_qs, urlsplit

from .errors import AccessDenied, IdentityProviderError
from .types import (
    _aware,
    _bool,
    _dt_in,
    _dt_out,
    _int,
    _invalid,
    _json_mapping,
    _need,
    _seq,
    _set,
    _str,
)

__all__ = [
    "AuthorizationRedirect",
    "AuthorizationResponse",
    "AuthorizationStart",
    "CodeExchange",
    "DeviceAuthorization",
    "DeviceAuthorizationStart",
    "DevicePoll",
    "DevicePollStatus",
    "IdentityContext",
    "IdentityInfo",
    "PkcePair",
    "RevocationResult",
    "TokenRevocation",
    "TokenSet",
    "new_nonce",
    "new_state",
    "pkce_challenge",
]

_URL_RE = re.compile(r"^https?://[^\s/?#]+[^\s]*$")
_OPAQUE_RE = re.compile(r"^[A-Za-z0-9._~-]{16,512}$")
_CHALLENGE_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_VERIFIER_RE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
_SCOPE_RE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,200}$")  # RFC 6749 scope-token
_TOKEN_TYPES = frozenset({"access_token", "refresh_token"})


def _url(value: object, path: str, *, optional: bool = False) -> str:
    text = _str(value, path)
    if optional and text == "":
        return text
    if not _URL_RE.match(text) or len(text) > 4096:
        _invalid(path, "expected an absolute http(s) URL")
    return text


def _opaque(value: object, path: str) -> str:
    text = _str(value, path)
    if not _OPAQUE_RE.match(text):
        _invalid(path, "expected 16-512 URL-safe characters (A-Z a-z 0-9 . _ ~ -)")
    return text


def _secret(value: object, path: str, *, optional: bool = False) -> str | None:
    if optional and value is None:
        return None
    text = _str(value, path)
    if not text or len(text) > 16384:
        _invalid(path, "expected a non-empty string of at most 16384 characters")
    return text


def _scopes(value: object, path: str = "scopes") -> tuple[str, ...]:
    items = _seq(value, path)
    for index, scope in enumerate(items):
        if not isinstance(scope, str) or not _SCOPE_RE.match(scope):
            _invalid(f"{path}[{index}]", "is not an OAuth scope token")
    if len(set(items)) != len(items):
        _invalid(path, "names a scope twice")
    return items


# --------------------------------------------------------------------------- helpers


def new_state() -> str:
    """A fresh, unguessable ``state`` (43 URL-safe characters)."""
    return secrets.token_urlsafe(32)


def new_nonce() -> str:
    """A fresh, unguessable ``nonce`` for the ID token (43 URL-safe characters)."""
    return secrets.token_urlsafe(32)


def pkce_challenge(verifier: str) -> str:
    """The S256 ``code_challenge`` of a PKCE ``verifier`` (RFC 7636 §4.2)."""
    if not isinstance(verifier, str) or not _VERIFIER_RE.match(verifier):
        _invalid("code_verifier", "expected 43-128 characters of A-Z a-z 0-9 . _ ~ -")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class PkcePair:
    """A PKCE verifier (the host keeps it server-side) and its S256 challenge."""

    verifier: str = dataclasses.field(repr=False)
    challenge: str

    @classmethod
    def generate(cls) -> PkcePair:
        verifier = secrets.token_urlsafe(64)  # 86 characters
        return cls(verifier=verifier, challenge=pkce_challenge(verifier))


# --------------------------------------------------------------------------- authorization


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizationStart:
    """The input of ``begin_authorization``: the host's redirect URI, its ``state`` and
    ``nonce``, and the S256 challenge of the PKCE verifier it keeps. ``scopes`` empty means
    the plugin's default scopes."""

    redirect_uri: str
    state: str
    nonce: str
    code_challenge: str
    scopes: tuple[str, ...] = ()
    login_hint: str = ""

    def __post_init__(self) -> None:
        _url(self.redirect_uri, "redirect_uri")
        _opaque(self.state, "state")
        _opaque(self.nonce, "nonce")
        if not isinstance(self.code_challenge, str) or not _CHALLENGE_RE.match(self.code_challenge):
            _invalid("code_challenge", "expected an S256 challenge (43 base64url characters)")
        _set(self, "scopes", _scopes(self.scopes))
        if len(_str(self.login_hint, "login_hint")) > 256:
            _invalid("login_hint", "must be at most 256 characters")

    @property
    def code_challenge_method(self) -> str:
        return "S256"

    def to_dict(self) -> dict[str, Any]:
        return {
            "redirect_uri": self.redirect_uri,
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.code_challenge,
            "scopes": list(self.scopes),
            "login_hint": self.login_hint,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            redirect_uri=_need(data, "redirect_uri", cls.__name__),
            state=_need(data, "state", cls.__name__),
            nonce=_need(data, "nonce", cls.__name__),
            code_challenge=_need(data, "code_challenge", cls.__name__),
            scopes=data.get("scopes", ()),
            login_hint=data.get("login_hint", ""),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizationRedirect:
    """Where to send the user's browser: the provider's authorization URL."""

    url: str

    def __post_init__(self) -> None:
        _url(self.url, "url")

    def query(self) -> dict[str, str]:
        """The URL's query parameters (the last value of each), for checks and tests."""
        return {key: values[-1] for key, values in parse_qs(urlsplit(self.url).query).items()}

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(url=_need(data, "url", cls.__name__))


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizationResponse:
    """What the provider sent back to the redirect URI: a ``code`` and the ``state``."""

    code: str = dataclasses.field(repr=False)
    state: str

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> AuthorizationResponse:
        """The code and state of a callback query; ``AccessDenied`` when the user declined,
        ``IdentityProviderError`` for any other ``error`` or a malformed callback. The
        provider's ``error_description`` is not repeated (it is provider-controlled text)."""
        error = query.get("error")
        if error == "access_denied":
            raise AccessDenied("the authorization was declined at the identity provider")
        if error is not None:
            shown = error if re.fullmatch(r"[a-z_]{1,64}", error) else "an unknown error"
            raise IdentityProviderError(f"the identity provider answered {shown}")
        code, state = query.get("code"), query.get("state")
        if not code or not state or len(code) > 4096:
            raise IdentityProviderError("the identity provider's callback has no code or state")
        return cls(code=code, state=_opaque(state, "state"))


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeExchange:
    """The input of ``exchange_code``: the code, the same redirect URI, the PKCE verifier
    and the nonce the ID token must carry."""

    code: str = dataclasses.field(repr=False)
    redirect_uri: str
    code_verifier: str = dataclasses.field(repr=False)
    nonce: str

    def __post_init__(self) -> None:
        _secret(self.code, "code")
        _url(self.redirect_uri, "redirect_uri")
        pkce_challenge(self.code_verifier)
        _opaque(self.nonce, "nonce")

    def secret_values(self) -> list[str]:
        return [self.code, self.code_verifier]

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": self.code_verifier,
            "nonce": self.nonce,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            code=_need(data, "code", cls.__name__),
            redirect_uri=_need(data, "redirect_uri", cls.__name__),
            code_verifier=_need(data, "code_verifier", cls.__name__),
            nonce=_need(data, "nonce", cls.__name__),
        )


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenSet:
    """Tokens from the provider. ``claims`` are the ID token's claims, *already verified*
    (signature, issuer, audience, expiry, nonce) by the plugin; empty without an ID token.
    ``expires_at`` is the access token's expiry (``None``: unknown). ``repr`` hides tokens."""

    access_token: str = dataclasses.field(repr=False)
    token_type: str = "Bearer"  # noqa: S105 - a token type, not a secret
    refresh_token: str | None = dataclasses.field(default=None, repr=False)
    id_token: str | None = dataclasses.field(default=None, repr=False)
    expires_at: datetime | None = None
    scopes: tuple[str, ...] = ()
    claims: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        _secret(self.access_token, "access_token")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,31}", _str(self.token_type, "token_type")):
            _invalid("token_type", "expected a token type such as Bearer")
        _secret(self.refresh_token, "refresh_token", optional=True)
        _secret(self.id_token, "id_token", optional=True)
        if self.expires_at is not None:
            _set(self, "expires_at", _aware(self.expires_at, "expires_at"))
        _set(self, "scopes", _scopes(self.scopes))
        _set(self, "claims", _json_mapping(self.claims, "claims"))

    def secret_values(self) -> list[str]:
        return [v for v in (self.access_token, self.refresh_token, self.id_token) if v]

    def expired(self, now: datetime, *, leeway: float = 0.0) -> bool:
        """Whether the access token has expired at ``now`` (``False`` if unknown)."""
        if self.expires_at is None:
            return False
        return (self.expires_at - now).total_seconds() <= leeway

    def to_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "refresh_token": self.refresh_token,
            "id_token": self.id_token,
            "expires_at": _dt_out(self.expires_at),
            "scopes": list(self.scopes),
            "claims": dict(self.claims),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            access_token=_need(data, "access_token", cls.__name__),
            token_type=data.get("token_type", "Bearer"),
            refresh_token=data.get("refresh_token"),
            id_token=data.get("id_token"),
            expires_at=_dt_in(data.get("expires_at"), "expires_at"),
            scopes=data.get("scopes", ()),
            claims=data.get("claims", {}),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRevocation:
    """The input of ``revoke``: one token and which kind it is (RFC 7009)."""

    token: str = dataclasses.field(repr=False)
    token_type_hint: str = "refresh_token"  # noqa: S105 - a hint name, not a secret

    def __post_init__(self) -> None:
        _secret(self.token, "token")
        if self.token_type_hint not in _TOKEN_TYPES:
            _invalid("token_type_hint", "expected access_token or refresh_token")

    def secret_values(self) -> list[str]:
        return [self.token]

    def to_dict(self) -> dict[str, Any]:
        return {"token": self.token, "token_type_hint": self.token_type_hint}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            token=_need(data, "token", cls.__name__),
            token_type_hint=data.get("token_type_hint", "refresh_token"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationResult:
    """``revoked`` is ``False`` when the provider has no revocation endpoint; the host then
    forgets the tokens anyway and says so."""

    revoked: bool
    message: str = ""

    def __post_init__(self) -> None:
        _bool(self.revoked, "revoked")
        _str(self.message, "message")

    def to_dict(self) -> dict[str, Any]:
        return {"revoked": self.revoked, "message": self.message}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(revoked=_need(data, "revoked", cls.__name__), message=data.get("message", ""))


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityInfo:
    """Who the tokens belong to. ``subject`` is the provider's stable user id; the rest is
    for display (``email_verified`` matters to sign-in policies). ``claims`` are extra,
    non-secret claims the plugin chooses to expose."""

    subject: str
    display_name: str = ""
    email: str = ""
    email_verified: bool = False
    avatar_url: str = ""
    scopes: tuple[str, ...] = ()
    expires_at: datetime | None = None
    claims: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _str(self.subject, "subject") or len(self.subject) > 255:
            _invalid("subject", "expected 1-255 characters")
        _str(self.display_name, "display_name")
        if self.email and "@" not in _str(self.email, "email"):
            _invalid("email", "is not an email address")
        _bool(self.email_verified, "email_verified")
        _url(self.avatar_url, "avatar_url", optional=True)
        _set(self, "scopes", _scopes(self.scopes))
        if self.expires_at is not None:
            _set(self, "expires_at", _aware(self.expires_at, "expires_at"))
        _set(self, "claims", _json_mapping(self.claims, "claims"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "display_name": self.display_name,
            "email": self.email,
            "email_verified": self.email_verified,
            "avatar_url": self.avatar_url,
            "scopes": list(self.scopes),
            "expires_at": _dt_out(self.expires_at),
            "claims": dict(self.claims),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            subject=_need(data, "subject", cls.__name__),
            display_name=data.get("display_name", ""),
            email=data.get("email", ""),
            email_verified=data.get("email_verified", False),
            avatar_url=data.get("avatar_url", ""),
            scopes=data.get("scopes", ()),
            expires_at=_dt_in(data.get("expires_at"), "expires_at"),
            claims=data.get("claims", {}),
        )


# --------------------------------------------------------------------------- device flow


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceAuthorizationStart:
    """The input of ``start_device_authorization`` (RFC 8628)."""

    scopes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "scopes", _scopes(self.scopes))

    def to_dict(self) -> dict[str, Any]:
        return {"scopes": list(self.scopes)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        if not isinstance(data, Mapping):
            _invalid(cls.__name__, "expected an object")
        return cls(scopes=data.get("scopes", ()))


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceAuthorization:
    """What to show the user (``user_code`` at ``verification_uri``) and what the host keeps
    to poll with (``device_code``, every ``interval`` seconds until ``expires_at``)."""

    device_code: str = dataclasses.field(repr=False)
    user_code: str
    verification_uri: str
    expires_at: datetime
    verification_uri_complete: str = ""
    interval: int = 5

    def __post_init__(self) -> None:
        _secret(self.device_code, "device_code")
        if not 1 <= len(_str(self.user_code, "user_code")) <= 64:
            _invalid("user_code", "expected 1-64 characters")
        _url(self.verification_uri, "verification_uri")
        _url(self.verification_uri_complete, "verification_uri_complete", optional=True)
        _set(self, "expires_at", _aware(self.expires_at, "expires_at"))
        _int(self.interval, "interval", 1, 600)

    def secret_values(self) -> list[str]:
        return [self.device_code]

    def to_dict(self) -> dict[str, Any]:
        return {
            "device_code": self.device_code,
            "user_code": self.user_code,
            "verification_uri": self.verification_uri,
            "verification_uri_complete": self.verification_uri_complete,
            "expires_at": _dt_out(self.expires_at),
            "interval": self.interval,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        expires = _dt_in(_need(data, "expires_at", cls.__name__), "expires_at")
        if expires is None:
            _invalid("expires_at", "is required")
        return cls(
            device_code=_need(data, "device_code", cls.__name__),
            user_code=_need(data, "user_code", cls.__name__),
            verification_uri=_need(data, "verification_uri", cls.__name__),
            verification_uri_complete=data.get("verification_uri_complete", ""),
            expires_at=expires,
            interval=data.get("interval", 5),
        )


class DevicePollStatus(StrEnum):
    PENDING = "pending"
    SLOW_DOWN = "slow_down"
    COMPLETE = "complete"
    DENIED = "denied"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True, kw_only=True)
class DevicePoll:
    """One poll of the device flow; ``tokens`` is set exactly when ``complete``."""

    status: DevicePollStatus
    tokens: TokenSet | None = None

    def __post_init__(self) -> None:
        try:
            _set(self, "status", DevicePollStatus(self.status))
        except ValueError:
            _invalid("status", f"{self.status!r} is not a device poll status")
        if (self.status is DevicePollStatus.COMPLETE) != (self.tokens is not None):
            _invalid("tokens", "are given exactly when the status is complete")
        if self.tokens is not None and not isinstance(self.tokens, TokenSet):
            _invalid("tokens", "expected a TokenSet")

    def secret_values(self) -> list[str]:
        return self.tokens.secret_values() if self.tokens is not None else []

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "tokens": self.tokens.to_dict() if self.tokens is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        tokens = data.get("tokens") if isinstance(data, Mapping) else None
        return cls(
            status=_need(data, "status", cls.__name__),
            tokens=TokenSet.from_dict(tokens) if tokens is not None else None,
        )


# --------------------------------------------------------------------------- context


class IdentityContext(Mapping[str, Any]):
    """``context.identity``: the *calling user's* token for the identity plugin the manifest
    names in ``requires_identity``. Never another user's, never a shared credential: without
    a usable connection the host answers ``identity_required`` and the plugin is not called.

    Read-only; ``repr`` never shows the token; pickling is refused (like ``Credentials``).
    """

    __slots__ = ("_data",)
    _data: Mapping[str, Any]

    def __init__(
        self,
        *,
        plugin: str,
        subject: str,
        access_token: str,
        token_type: str = "Bearer",  # noqa: S107 - a token type, not a secret
        scopes: tuple[str, ...] | list[str] = (),
        expires_at: datetime | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(plugin, str) or not re.fullmatch(r"[a-z][a-z0-9-]{1,63}", plugin):
            _invalid("identity.plugin", "expected an identity plugin slug")
        if not _str(subject, "identity.subject") or len(subject) > 255:
            _invalid("identity.subject", "expected 1-255 characters")
        _secret(access_token, "identity.access_token")
        _str(token_type, "identity.token_type")
        data = {
            "plugin": plugin,
            "subject": subject,
            "access_token": access_token,
            "token_type": token_type,
            "scopes": _scopes(scopes, "identity.scopes"),
            "expires_at": None if expires_at is None else _aware(expires_at, "identity.expires_at"),
            "claims": _json_mapping(claims or {}, "identity.claims"),
        }
        object.__setattr__(self, "_data", data)

    @property
    def plugin(self) -> str:
        return str(self._data["plugin"])

    @property
    def subject(self) -> str:
        return str(self._data["subject"])

    @property
    def access_token(self) -> str:
        return str(self._data["access_token"])

    @property
    def token_type(self) -> str:
        return str(self._data["token_type"])

    @property
    def scopes(self) -> tuple[str, ...]:
        scopes: tuple[str, ...] = self._data["scopes"]
        return scopes

    @property
    def expires_at(self) -> datetime | None:
        expires: datetime | None = self._data["expires_at"]
        return expires

    @property
    def claims(self) -> Mapping[str, Any]:
        claims: Mapping[str, Any] = self._data["claims"]
        return claims

    def authorization_header(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}`` for an HTTP client."""
        return {"Authorization": f"{self.token_type} {self.access_token}"}

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdentityContext) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.plugin, self.subject))

    def __repr__(self) -> str:
        return f"IdentityContext(plugin={self.plugin!r}, subject={self.subject!r}, token=***)"

    __str__ = __repr__

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("IdentityContext is read-only")

    def __reduce__(self) -> NoReturn:
        raise TypeError("IdentityContext cannot be pickled; use to_dict() explicitly")

    def secret_values(self) -> list[str]:
        return [self.access_token]

    def to_dict(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin,
            "subject": self.subject,
            "access_token": self.access_token,
            "token_type": self.token_type,
            "scopes": list(self.scopes),
            "expires_at": _dt_out(self.expires_at),
            "claims": dict(self.claims),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IdentityContext:
        if not isinstance(data, Mapping):
            _invalid("identity", "expected an object")
        unknown = sorted(set(data) - _IDENTITY_FIELDS)
        if unknown:
            _invalid("identity", f"unknown field {unknown[0]!r}")
        scopes = data.get("scopes", ())
        return cls(
            plugin=_need(data, "plugin", "identity"),
            subject=_need(data, "subject", "identity"),
            access_token=_need(data, "access_token", "identity"),
            token_type=data.get("token_type", "Bearer"),
            scopes=_seq(scopes, "identity.scopes"),
            expires_at=_dt_in(data.get("expires_at"), "identity.expires_at"),
            claims=data.get("claims") or {},
        )


_IDENTITY_FIELDS = frozenset(
    {"plugin", "subject", "access_token", "token_type", "scopes", "expires_at", "claims"}
)
