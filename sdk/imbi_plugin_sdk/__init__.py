"""The Imbi plugin SDK: everything a plugin imports. Pure Python, no Django.

A plugin is a ``PluginHandler`` subclass (``ConfigurationPlugin`` or ``LogsPlugin``) with a
``manifest: ClassVar[PluginManifest]``. The host builds one per call with a
``PluginContext`` and ``Credentials``, and exchanges the models of ``types`` with it.
Plugins raise ``PluginError`` subclasses; ``testkit`` checks a handler against the
contract. Modules: manifest, types, interfaces, errors, context, projects (read-only project
metadata, contract 1.2), results (what each
method returns), redaction, wire (the JSON Call/Reply contract and ``execute``), testkit
(contract checks, sample builders, fakes) and cli (the ``imbi-plugin`` tool).

Versions: the distribution is ``imbi-plugin-sdk``; its MAJOR.MINOR is the contract's
``SDK_API_VERSION`` (the patch level is free). See docs/decisions on version bumps.
"""

from ._version import __version__
from .context import (
    Credentials,
    KeyValueStore,
    LogSink,
    MemoryKeyValueStore,
    MemoryLogSink,
    PluginContext,
    sink_logger,
)
from .errors import (
    Conflict,
    CredentialsInvalid,
    CredentialsMissing,
    CursorExpired,
    InvalidInput,
    ManifestError,
    NotFound,
    NotSupported,
    OptionValidationError,
    PermissionDenied,
    PluginError,
    PluginFailed,
    PluginTimeout,
    RegexRejected,
    UpstreamUnavailable,
)
from .interfaces import (
    HANDLER_BASES,
    ConfigurationPlugin,
    LogsPlugin,
    PluginHandler,
    check_handler_class,
    handler_type_errors,
)
from .manifest import (
    SDK_API_VERSION,
    ApiVersion,
    CredentialField,
    Hints,
    OptionField,
    OptionType,
    Permissions,
    PluginManifest,
    PluginType,
    ServiceTemplate,
    is_compatible,
    looks_like_secret,
)
from .projects import MemoryProjectMetadata, ProjectMetadata, ProjectMetadataReader
from .redaction import redact, secret_values
from .regex import MAX_REGEX_LENGTH, check_log_filters, check_regex
from .results import RESULTS, check_result
from .types import (
    ConfigKey,
    ConfigValue,
    ConfigWrite,
    ConnectionResult,
    DataType,
    FilterOp,
    Histogram,
    HistogramBucket,
    JSONValue,
    LogEntry,
    LogFilter,
    LogLevel,
    LogQuery,
    LogResult,
    validate_config_key,
)
from .wire import Call, Reply, WireError, execute

__all__ = [
    "HANDLER_BASES",
    "MAX_REGEX_LENGTH",
    "RESULTS",
    "SDK_API_VERSION",
    "ApiVersion",
    "Call",
    "ConfigKey",
    "ConfigValue",
    "ConfigWrite",
    "ConfigurationPlugin",
    "Conflict",
    "ConnectionResult",
    "CredentialField",
    "Credentials",
    "CredentialsInvalid",
    "CredentialsMissing",
    "CursorExpired",
    "DataType",
    "FilterOp",
    "Hints",
    "Histogram",
    "HistogramBucket",
    "InvalidInput",
    "JSONValue",
    "KeyValueStore",
    "LogEntry",
    "LogFilter",
    "LogLevel",
    "LogQuery",
    "LogResult",
    "LogSink",
    "LogsPlugin",
    "ManifestError",
    "MemoryKeyValueStore",
    "MemoryLogSink",
    "MemoryProjectMetadata",
    "NotFound",
    "NotSupported",
    "OptionField",
    "OptionType",
    "OptionValidationError",
    "PermissionDenied",
    "Permissions",
    "PluginContext",
    "PluginError",
    "PluginFailed",
    "PluginHandler",
    "PluginManifest",
    "PluginTimeout",
    "PluginType",
    "ProjectMetadata",
    "ProjectMetadataReader",
    "RegexRejected",
    "Reply",
    "ServiceTemplate",
    "UpstreamUnavailable",
    "WireError",
    "__version__",
    "check_handler_class",
    "check_log_filters",
    "check_regex",
    "check_result",
    "execute",
    "handler_type_errors",
    "is_compatible",
    "looks_like_secret",
    "redact",
    "secret_values",
    "sink_logger",
    "validate_config_key",
]
