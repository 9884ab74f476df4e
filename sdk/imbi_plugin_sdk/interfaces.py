"""The interfaces a plugin implements: one small abstract base per plugin type.

Owns ``PluginHandler`` (common to all), ``ConfigurationPlugin``, ``LogsPlugin``,
``IdentityPlugin`` and ``DeploymentPlugin`` (contract 1.3),
``HANDLER_BASES`` and ``check_handler_class`` which the host registry calls before it
accepts a handler class. A handler is built per call with a ``PluginContext`` and the
``Credentials`` for that call; it should hold no state across calls.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import ClassVar

from .context import Credentials, PluginContext
from .deployment import (
    CommitPage,
    CommitQuery,
    Comparison,
    Deployment,
    DeploymentQuery,
    DeploymentRequest,
    Environment,
    RefPage,
    RefQuery,
)
from .errors import ManifestError, NotSupported
from .identity import (
    AuthorizationRedirect,
    AuthorizationStart,
    CodeExchange,
    DeviceAuthorization,
    DeviceAuthorizationStart,
    DevicePoll,
    IdentityInfo,
    RevocationResult,
    TokenRevocation,
    TokenSet,
)
from .manifest import SDK_API_VERSION, ApiVersion, PluginManifest, PluginType, is_compatible
from .types import (
    ConfigKey,
    ConfigValue,
    ConfigWrite,
    ConnectionResult,
    Histogram,
    LogQuery,
    LogResult,
    validate_config_key,
)

__all__ = [
    "HANDLER_BASES",
    "ConfigurationPlugin",
    "DeploymentPlugin",
    "IdentityPlugin",
    "LogsPlugin",
    "PluginHandler",
    "check_handler_class",
    "handler_type_errors",
    "validate_config_key",
]


class PluginHandler(abc.ABC):
    """Base of every handler. Subclasses set ``manifest`` as a class attribute."""

    manifest: ClassVar[PluginManifest]
    plugin_type: ClassVar[PluginType]

    def __init__(self, context: PluginContext, credentials: Credentials) -> None:
        self.context = context
        self.credentials = credentials

    @abc.abstractmethod
    def test_connection(self) -> ConnectionResult:
        """Check credentials and reachability; report problems, do not raise for them."""


class ConfigurationPlugin(PluginHandler):
    """Serves a project's Configuration tab from a key-value backend."""

    plugin_type: ClassVar[PluginType] = PluginType.CONFIGURATION

    @abc.abstractmethod
    def list_keys(self) -> list[ConfigKey]:
        """Every key in scope, without values."""

    @abc.abstractmethod
    def get_values(self, keys: Sequence[str] | None = None) -> list[ConfigValue]:
        """Values of ``keys`` (``None``: all). Missing keys are omitted, not errors."""

    @abc.abstractmethod
    def set_value(self, key: str, value: ConfigWrite) -> ConfigKey:
        """Create or replace ``key``."""

    @abc.abstractmethod
    def delete_key(self, key: str) -> None:
        """Remove ``key``; deleting a missing key is not an error (idempotent)."""


class LogsPlugin(PluginHandler):
    """Serves a project's Logs tab from a log backend."""

    plugin_type: ClassVar[PluginType] = PluginType.LOGS

    @abc.abstractmethod
    def search(self, query: LogQuery) -> LogResult:
        """At most ``query.limit`` entries in ``[query.start, query.end]``."""

    def histogram(self, query: LogQuery, bucket_count: int) -> Histogram:
        """Entry counts over the query range; override and set ``hints.supports_histogram``."""
        raise NotSupported(f"{self.manifest.slug} does not provide histograms")


class IdentityPlugin(PluginHandler):
    """Connects a *person* to a provider (contract 1.3): OAuth 2.0 authorization code with
    PKCE (S256), state and nonce; refresh; revocation; who the tokens belong to.

    The host owns the flow's secrets (state, nonce, PKCE verifier: made with
    ``identity.new_state``/``new_nonce``/``PkcePair``, kept server-side) and the tokens
    (stored encrypted per user). The plugin only speaks to the provider, and must verify an
    ID token fully (signature with the provider's keys, issuer, audience, expiry, nonce)
    before returning its claims. ``credentials`` are the *client's* (client id and secret);
    no user's token is ever a credential.
    """

    plugin_type: ClassVar[PluginType] = PluginType.IDENTITY

    @abc.abstractmethod
    def begin_authorization(self, start: AuthorizationStart) -> AuthorizationRedirect:
        """The provider's authorization URL for this state, nonce and S256 challenge."""

    @abc.abstractmethod
    def exchange_code(self, exchange: CodeExchange) -> TokenSet:
        """Trade the callback's code (with the PKCE verifier) for verified tokens.

        Raise ``InvalidGrant`` when the provider refuses the code, ``IdTokenInvalid``
        subclasses when the ID token fails a check."""

    @abc.abstractmethod
    def refresh(self, refresh_token: str) -> TokenSet:
        """The next ``TokenSet``; ``InvalidGrant`` when the refresh token is refused (the
        host then marks the connection ``reconnect_required``)."""

    @abc.abstractmethod
    def revoke(self, revocation: TokenRevocation) -> RevocationResult:
        """End a token at the provider (RFC 7009); ``revoked=False`` when it cannot."""

    @abc.abstractmethod
    def describe(self, tokens: TokenSet) -> IdentityInfo:
        """Who ``tokens`` belong to: ``IdentityExpired`` if expired, ``IdentityRevoked`` if
        the provider refuses a token that has not expired."""

    def start_device_authorization(self, start: DeviceAuthorizationStart) -> DeviceAuthorization:
        """Start the device flow (RFC 8628); override and set
        ``hints.supports_device_flow``."""
        raise NotSupported(f"{self.manifest.slug} does not offer the device flow")

    def poll_device_authorization(self, device_code: str) -> DevicePoll:
        """One poll of the device flow (``pending``, ``slow_down``, ``complete``...)."""
        raise NotSupported(f"{self.manifest.slug} does not offer the device flow")


class DeploymentPlugin(PluginHandler):
    """Serves a project's Deployments tab (contract 1.3): refs, commits, comparisons,
    environments and deployments. Usually declares ``requires_identity`` so that every
    call acts as the signed-in user (``context.identity``)."""

    plugin_type: ClassVar[PluginType] = PluginType.DEPLOYMENT

    @abc.abstractmethod
    def list_refs(self, query: RefQuery) -> RefPage:
        """Branches and tags (``query.kind``), at most ``query.limit``, paged by cursor."""

    @abc.abstractmethod
    def list_commits(self, query: CommitQuery) -> CommitPage:
        """Commits of ``query.ref``, newest first; ``RefNotFound`` for an unknown ref."""

    @abc.abstractmethod
    def compare_refs(self, base: str, head: str) -> Comparison:
        """``head`` compared with ``base``; ``RefNotFound`` when either does not exist."""

    @abc.abstractmethod
    def list_environments(self) -> list[Environment]:
        """The environments a deployment can target."""

    @abc.abstractmethod
    def list_deployments(self, query: DeploymentQuery) -> list[Deployment]:
        """Recent deployments, newest first."""

    @abc.abstractmethod
    def trigger_deployment(self, request: DeploymentRequest) -> Deployment:
        """Start deploying ``request.ref`` to ``request.environment``; return it as queued
        (or further). ``RefNotFound`` for an unknown ref, ``NotFound`` for an unknown
        environment, ``CredentialsInvalid`` when the user's token may not deploy."""

    @abc.abstractmethod
    def get_deployment(self, deployment_id: str) -> Deployment:
        """The deployment's current status and run URL; ``NotFound`` when unknown."""


# mypy refuses abstract classes as type[...] values (python/mypy#4717); they are meant.
_BASES: dict[PluginType, type[PluginHandler]] = {
    PluginType.CONFIGURATION: ConfigurationPlugin,  # type: ignore[type-abstract]
    PluginType.LOGS: LogsPlugin,  # type: ignore[type-abstract]
    PluginType.IDENTITY: IdentityPlugin,  # type: ignore[type-abstract]
    PluginType.DEPLOYMENT: DeploymentPlugin,  # type: ignore[type-abstract]
}
HANDLER_BASES: Mapping[PluginType, type[PluginHandler]] = MappingProxyType(_BASES)
"""The interface a handler must subclass, per plugin type."""


def handler_type_errors(cls: object) -> list[str]:
    """Everything wrong with a handler class (empty when the host may register it)."""
    if not isinstance(cls, type) or not issubclass(cls, PluginHandler):
        return [f"{cls!r} is not a PluginHandler subclass"]
    manifest = getattr(cls, "manifest", None)
    if not isinstance(manifest, PluginManifest):
        return [f"{cls.__qualname__}.manifest must be a PluginManifest class attribute"]
    errors: list[str] = []
    base = HANDLER_BASES.get(manifest.plugin_type)
    if base is None:
        errors.append(f"plugin_type {manifest.plugin_type} has no handler interface in this SDK")
    elif not issubclass(cls, base):
        errors.append(
            f"manifest.plugin_type is {manifest.plugin_type} but {cls.__qualname__} "
            f"does not subclass {base.__name__}"
        )
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        errors.append(f"{cls.__qualname__} does not implement: {missing}")
    if manifest.hints.supports_histogram and (
        not issubclass(cls, LogsPlugin) or cls.histogram is LogsPlugin.histogram
    ):
        errors.append("hints.supports_histogram is set but histogram() is not overridden")
    if manifest.hints.supports_device_flow and (
        not issubclass(cls, IdentityPlugin)
        or cls.start_device_authorization is IdentityPlugin.start_device_authorization
        or cls.poll_device_authorization is IdentityPlugin.poll_device_authorization
    ):
        errors.append(
            "hints.supports_device_flow is set but the device-flow methods are not overridden"
        )
    if manifest.plugin_type is PluginType.IDENTITY and manifest.api < ApiVersion(1, 3):
        errors.append("identity handlers need api_version 1.3 or later")
    ok, reason = is_compatible(manifest.api, ApiVersion.parse(SDK_API_VERSION))
    if not ok:
        errors.append(f"api_version: {reason}")
    return errors


def check_handler_class(cls: object) -> PluginManifest:
    """Return the class's manifest, or raise ``ManifestError`` listing every problem."""
    errors = handler_type_errors(cls)
    if errors:
        name = f"{cls.__module__}.{cls.__qualname__}" if isinstance(cls, type) else repr(cls)
        raise ManifestError(name, "; ".join(errors))
    manifest: PluginManifest = cls.manifest  # type: ignore[attr-defined]
    return manifest
