"""The interfaces a plugin implements: one small abstract base per plugin type.

Owns ``PluginHandler`` (common to all), ``ConfigurationPlugin``, ``LogsPlugin``,
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
from .errors import ManifestError, NotSupported
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


# mypy refuses abstract classes as type[...] values (python/mypy#4717); they are meant.
_BASES: dict[PluginType, type[PluginHandler]] = {
    PluginType.CONFIGURATION: ConfigurationPlugin,  # type: ignore[type-abstract]
    PluginType.LOGS: LogsPlugin,  # type: ignore[type-abstract]
}
HANDLER_BASES: Mapping[PluginType, type[PluginHandler]] = MappingProxyType(_BASES)
"""The interface a handler must subclass, per plugin type (identity has none yet)."""


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
