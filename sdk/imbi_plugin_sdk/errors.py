"""Errors of the plugin SDK.

Owns two families:

* ``PluginError`` and its subclasses: what a plugin raises at run time. Each has a
  stable snake_case ``code`` (the host puts it in problem+json), an ``http_status``
  hint and a human ``detail``. ``to_dict()``/``PluginError.from_dict()`` let an error
  cross a process boundary and come back as the same subclass.
* ``ManifestError`` and ``OptionValidationError``: plain ``ValueError``s raised while
  validating a manifest, or the options and credentials an admin entered.

SECURITY: ``detail`` (and every message here) is shown to users and written to logs.
It must never contain a secret value: no credential, token, password or secret
configuration value. Name the field, never echo the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "SDK_ERROR_CODES",
    "AccessDenied",
    "Conflict",
    "CredentialsInvalid",
    "CredentialsMissing",
    "CursorExpired",
    "IdTokenAudienceMismatch",
    "IdTokenExpired",
    "IdTokenInvalid",
    "IdTokenIssuerMismatch",
    "IdTokenNonceMismatch",
    "IdTokenSignatureInvalid",
    "IdentityExpired",
    "IdentityProviderError",
    "IdentityProviderUnavailable",
    "IdentityRequired",
    "IdentityRevoked",
    "InvalidGrant",
    "InvalidInput",
    "ManifestError",
    "NotFound",
    "NotSupported",
    "OptionValidationError",
    "PermissionDenied",
    "PluginError",
    "PluginFailed",
    "PluginTimeout",
    "RefNotFound",
    "RegexRejected",
    "UpstreamUnavailable",
]


class PluginError(Exception):
    """Base of every error a plugin may raise on purpose."""

    code: ClassVar[str] = "plugin_error"
    http_status: ClassVar[int] = 500
    _by_code: ClassVar[dict[str, type[PluginError]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # First class to claim a code wins: a plugin's own NotFound subclass must not
        # replace NotFound when errors are rebuilt from dicts.
        PluginError._by_code.setdefault(cls.code, cls)

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail)
        self.detail = detail

    def __str__(self) -> str:
        return self.detail or self.code

    def extra(self) -> dict[str, Any]:
        """Subclass-specific, JSON-safe fields (keyword arguments of ``__init__``)."""
        return {}

    def check_fields(self) -> None:
        """Raise ``ValueError`` if a field does not have its documented type."""
        if not isinstance(self.detail, str):
            raise ValueError("detail: expected a string")

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail, **self.extra()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PluginError:
        """Rebuild an error; the subclass is chosen by ``code`` (unknown: PluginError)."""
        kind = PluginError._by_code.get(str(data.get("code", "")), PluginError)
        extra = {key: value for key, value in data.items() if key not in ("code", "detail")}
        try:
            return kind(str(data.get("detail", "")), **extra)
        except TypeError:  # extra fields this version does not know
            return kind(str(data.get("detail", "")))

    def __reduce__(self) -> tuple[Any, ...]:
        return (PluginError.from_dict, (self.to_dict(),))


class NotFound(PluginError):
    code = "not_found"
    http_status = 404


class Conflict(PluginError):
    code = "conflict"
    http_status = 409


class InvalidInput(PluginError):
    """Bad input; ``fields`` maps a field name to what is wrong with it."""

    code = "invalid_input"
    http_status = 400

    def __init__(self, detail: str = "", *, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.fields: dict[str, str] = dict(fields or {})

    def extra(self) -> dict[str, Any]:
        return {"fields": dict(self.fields)} if self.fields else {}

    def check_fields(self) -> None:
        super().check_fields()
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.fields.items()):
            raise ValueError("fields: expected an object of strings")


class RegexRejected(InvalidInput):
    """A regex filter the plugin will not run: too long, nested repetition, or a feature
    its linear-time engine does not have (``sdk.regex.check_regex``)."""

    code = "regex_rejected"
    http_status = 400

    @classmethod
    def unsupported(cls, field: str = "filters") -> RegexRejected:
        """The linear-time engine refused the pattern (lookaround, backreferences, size)."""
        return cls(
            f"{field}: this regular expression is not supported (no lookaround or "
            "backreferences; keep counted repetitions small)",
            fields={field: "not supported by the linear-time regex engine"},
        )


class CredentialsMissing(PluginError):
    code = "credentials_missing"
    http_status = 503


class CredentialsInvalid(PluginError):
    code = "credentials_invalid"
    http_status = 502


class UpstreamUnavailable(PluginError):
    """The backend is down or throttling; ``retry_after`` is in seconds when known."""

    code = "upstream_unavailable"
    http_status = 503

    def __init__(self, detail: str = "", *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    def extra(self) -> dict[str, Any]:
        return {"retry_after": self.retry_after} if self.retry_after is not None else {}

    def check_fields(self) -> None:
        super().check_fields()
        seconds = self.retry_after
        if seconds is not None and (
            isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds <= 86400
        ):
            raise ValueError("retry_after: expected whole seconds from 0 to 86400")


class PluginTimeout(PluginError):
    code = "plugin_timeout"
    http_status = 504


class CursorExpired(PluginError):
    code = "cursor_expired"
    http_status = 409


class NotSupported(PluginError):
    code = "not_supported"
    http_status = 501


class PermissionDenied(PluginError):
    """The plugin used something (a host, storage) its manifest did not declare."""

    code = "plugin_permission_denied"
    http_status = 403


class PluginFailed(PluginError):
    """The plugin misbehaved: it raised something that is not a ``PluginError``, or returned
    a result of the wrong type, a value that is not JSON, or a reply over the size cap.
    Raised by the host's runner (and ``wire.execute``), never by plugins themselves."""

    code = "plugin_failed"
    http_status = 502


# --------------------------------------------------------------------------- identity (1.3)


class IdentityRequired(PluginError):
    """The call needs the calling user's connection to an identity plugin, and there is none
    usable (never connected, disconnected, or ``reconnect_required``). Raised by the host;
    ``connect_url`` is where the user connects (a platform URL, never the provider's)."""

    code = "identity_required"
    http_status = 403

    def __init__(self, detail: str = "", *, connect_url: str = "", plugin: str = "") -> None:
        super().__init__(detail)
        self.connect_url = connect_url
        self.plugin = plugin

    def extra(self) -> dict[str, Any]:
        data: dict[str, Any] = {"connect_url": self.connect_url}
        if self.plugin:
            data["plugin"] = self.plugin
        return data

    def check_fields(self) -> None:
        super().check_fields()
        if not isinstance(self.connect_url, str) or not isinstance(self.plugin, str):
            raise ValueError("connect_url, plugin: expected strings")
        if self.connect_url and not self.connect_url.startswith(("/", "https://", "http://")):
            raise ValueError("connect_url: expected a path or an http(s) URL")


class IdentityProviderError(PluginError):
    """The identity provider answered something unusable: malformed JSON, an unexpected
    status, a discovery document that does not match the configured issuer."""

    code = "identity_provider_error"
    http_status = 502


class IdentityProviderUnavailable(UpstreamUnavailable):
    """The identity provider cannot be reached (connection refused, DNS, 5xx)."""

    code = "identity_provider_unavailable"
    http_status = 503


class InvalidGrant(PluginError):
    """The provider refused an authorization code or refresh token (expired, revoked,
    already used, issued to another client): the user must connect again."""

    code = "invalid_grant"
    http_status = 400


class AccessDenied(PluginError):
    """The user (or the provider's policy) declined the authorization request."""

    code = "access_denied"
    http_status = 403


class IdentityExpired(PluginError):
    """The access token has expired and there is no way to refresh it here."""

    code = "identity_expired"
    http_status = 401


class IdentityRevoked(PluginError):
    """The provider no longer accepts an access token that has not expired: revoked."""

    code = "identity_revoked"
    http_status = 401


class IdTokenInvalid(PluginError):
    """An ID token failed verification; each subclass is one reason, with its own code."""

    code = "id_token_invalid"
    http_status = 502


class IdTokenSignatureInvalid(IdTokenInvalid):
    code = "id_token_bad_signature"


class IdTokenIssuerMismatch(IdTokenInvalid):
    code = "id_token_wrong_issuer"


class IdTokenAudienceMismatch(IdTokenInvalid):
    code = "id_token_wrong_audience"


class IdTokenNonceMismatch(IdTokenInvalid):
    code = "id_token_wrong_nonce"


class IdTokenExpired(IdTokenInvalid):
    code = "id_token_expired"


# --------------------------------------------------------------------------- deployment (1.3)


class RefNotFound(NotFound):
    """A deployment plugin was asked for a branch, tag or commit that does not exist."""

    code = "ref_not_found"
    http_status = 404


SDK_ERROR_CODES: frozenset[str] = frozenset(
    cls.code
    for cls in (
        NotFound,
        Conflict,
        InvalidInput,
        CredentialsMissing,
        CredentialsInvalid,
        UpstreamUnavailable,
        PluginTimeout,
        CursorExpired,
        NotSupported,
        PermissionDenied,
        RegexRejected,
        PluginFailed,
        IdentityRequired,
        IdentityProviderError,
        IdentityProviderUnavailable,
        InvalidGrant,
        AccessDenied,
        IdentityExpired,
        IdentityRevoked,
        IdTokenInvalid,
        IdTokenSignatureInvalid,
        IdTokenIssuerMismatch,
        IdTokenAudienceMismatch,
        IdTokenNonceMismatch,
        IdTokenExpired,
        RefNotFound,
    )
)
"""The codes that may cross the wire; a plugin's own codes become ``plugin_failed``."""


class ManifestError(ValueError):
    """An invalid manifest or handler class; ``field`` is the dotted path at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def prefixed(self, prefix: str) -> ManifestError:
        """The same error, seen from the enclosing object (``options[1]`` + ``type``)."""
        return ManifestError(f"{prefix}.{self.field}", self.message)


class OptionValidationError(ValueError):
    """Options or credentials rejected; ``errors`` maps every bad field to a message.

    Build it with a mapping of all errors, or with one ``(field_name, message)``.
    """

    def __init__(self, errors: Mapping[str, str] | str, message: str = "") -> None:
        self.errors: dict[str, str] = {errors: message} if isinstance(errors, str) else dict(errors)
        super().__init__("; ".join(f"{name}: {msg}" for name, msg in self.errors.items()))
