"""The JSON call contract between the host and a plugin: a ``Call`` in, a ``Reply`` out.

This is the wire format of every plugin call. The in-process runner serializes each call and
reply through it; an isolated runtime only changes the transport (a pipe instead of a string
in memory). API::

    call = Call.build("aws-ssm", "get_values", ["db/url"], context=ctx, credentials=creds)
    text = call.to_json()                      # str;  Call.from_json(text) == call
    reply = execute(Call.from_json(text), SSMConfiguration, storage=store, log=sink)
    text = reply.to_json()                     # str;  Reply.from_json(text) == reply
    values = Reply.from_json(text).unwrap("get_values")   # models, or raises PluginError

- ``Call(entry_point, method, arguments, context, credentials)``: JSON values only.
  ``arguments`` maps parameter names (``METHODS``) to their JSON form (models as
  ``to_dict()``); ``context`` is ``PluginContext.to_dict()``; ``credentials`` is a
  ``str -> str`` dict, never shown by ``repr``. ``Call.build`` encodes Python arguments;
  ``call.decoded_arguments()`` decodes them.
- ``Reply(result=..., error=...)``: one of the two. ``error`` is ``PluginError.to_dict()``;
  ``unwrap(method)`` returns the result models or raises that error.
- ``execute(call, handler_cls, *, storage=None, log=None, max_reply_bytes=..., projects=None)``
  is the whole
  plugin side: rebuild context and credentials, construct the handler, call the method,
  check the result (``results``), encode it, enforce the size cap. It never raises: a plugin
  bug of any kind, ``BaseException`` included, becomes a ``plugin_failed`` Reply, and its
  traceback goes to ``log`` with every secret value redacted.
- ``WireError`` (a ``ValueError``): a Call or Reply text that does not fit the contract.

Every text is plain JSON (``allow_nan=False``): NaN, infinities and arbitrary objects are
refused, never smuggled through.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .context import Credentials, KeyValueStore, LogSink, PluginContext, sink_logger
from .deployment import (
    CommitQuery,
    DeploymentQuery,
    DeploymentRequest,
    RefQuery,
    validate_ref_name,
)
from .errors import SDK_ERROR_CODES, IdentityRequired, PluginError, PluginFailed
from .identity import (
    AuthorizationStart,
    CodeExchange,
    DeviceAuthorizationStart,
    IdentityContext,
    TokenRevocation,
    TokenSet,
)
from .interfaces import PluginHandler
from .projects import ProjectMetadataReader
from .redaction import redact, secret_values
from .results import RESULTS, decode_result, encode_result, result_problem
from .types import ConfigWrite, JSONValue, LogQuery

__all__ = [
    "DEFAULT_MAX_REPLY_BYTES",
    "MAX_DETAIL_CHARS",
    "MAX_ERROR_BYTES",
    "METHODS",
    "SECRET_ARGUMENTS",
    "WIRE_VERSION",
    "Call",
    "Reply",
    "WireError",
    "execute",
]

WIRE_VERSION = 1
"""Bumped only if the envelope itself changes (not for new methods or fields)."""

DEFAULT_MAX_REPLY_BYTES = 8 * 1024 * 1024
"""A reply larger than this (as JSON text) is refused as ``plugin_failed``."""

MAX_DETAIL_CHARS = 1000
"""A plugin error's ``detail`` is cut to this many characters (it is shown to users)."""

MAX_ERROR_BYTES = 64 * 1024
"""An error reply larger than this (extra fields included) becomes ``plugin_failed``."""

METHODS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "test_connection": (),
        "list_keys": (),
        "get_values": ("keys",),
        "set_value": ("key", "value"),
        "delete_key": ("key",),
        "search": ("query",),
        "histogram": ("query", "bucket_count"),
        # identity (contract 1.3)
        "begin_authorization": ("start",),
        "exchange_code": ("exchange",),
        "refresh": ("refresh_token",),
        "revoke": ("revocation",),
        "describe": ("tokens",),
        "start_device_authorization": ("device_start",),
        "poll_device_authorization": ("device_code",),
        # deployment (contract 1.3)
        "list_refs": ("ref_query",),
        "list_commits": ("commit_query",),
        "compare_refs": ("base", "head"),
        "list_environments": (),
        "list_deployments": ("deployment_query",),
        "trigger_deployment": ("request",),
        "get_deployment": ("deployment_id",),
    }
)
"""Every method a host may call, with its parameter names in order."""


class WireError(ValueError):
    """A Call or Reply that does not fit the contract (malformed JSON, wrong fields)."""


def _dumps(value: object) -> str:
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise WireError(f"not JSON: {exc}") from None


def _loads(text: str | bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except (TypeError, ValueError) as exc:
        raise WireError(f"{what}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise WireError(f"{what}: expected a JSON object")
    return data


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# --------------------------------------------------------------------------- arguments

_MODEL_ARGUMENTS: Mapping[str, type[Any]] = MappingProxyType(
    {
        "value": ConfigWrite,
        "query": LogQuery,
        "start": AuthorizationStart,
        "exchange": CodeExchange,
        "revocation": TokenRevocation,
        "tokens": TokenSet,
        "device_start": DeviceAuthorizationStart,
        "ref_query": RefQuery,
        "commit_query": CommitQuery,
        "deployment_query": DeploymentQuery,
        "request": DeploymentRequest,
    }
)
"""Arguments that travel as a model's ``to_dict()``, by wire name."""

SECRET_ARGUMENTS = frozenset({"refresh_token", "device_code"})
"""String arguments that are secrets: redacted from everything the plugin says."""


def _encode_argument(name: str, value: Any) -> JSONValue:
    if name in _MODEL_ARGUMENTS:
        kind = _MODEL_ARGUMENTS[name]
        if not isinstance(value, kind):
            raise WireError(f"{name}: expected a {kind.__name__}")
        encoded: JSONValue = value.to_dict()
        return encoded
    if name == "keys":
        if value is None:
            return None
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
            raise WireError("keys: expected a list of strings or None")
        keys = list(value)
        if not all(isinstance(key, str) for key in keys):
            raise WireError("keys: expected a list of strings or None")
        return keys
    if name == "key":  # the plugin answers a bad key (an empty one too) with a field error
        if not isinstance(value, str):
            raise WireError("key: expected a string")
        return value
    if name in ("deployment_id", *SECRET_ARGUMENTS):
        if not isinstance(value, str) or not value or len(value) > 16384:
            raise WireError(f"{name}: expected a non-empty string")
        return value
    if name in ("base", "head"):
        try:
            return validate_ref_name(value, name)
        except PluginError as exc:
            raise WireError(str(exc)) from None
    if name == "bucket_count":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
            raise WireError("bucket_count: expected an integer from 1 to 1000")
        return value
    raise WireError(f"unknown argument {name!r}")  # pragma: no cover - METHODS is closed


def _decode_argument(name: str, value: Any) -> Any:
    if name in _MODEL_ARGUMENTS:
        try:
            return _MODEL_ARGUMENTS[name].from_dict(value)
        except (PluginError, TypeError, ValueError, AttributeError) as exc:
            raise WireError(f"{name}: {exc}") from None
    _encode_argument(name, value)  # the JSON form of the others is their Python form
    return value


def _argument_secrets(name: str, value: Any) -> list[str]:
    if name in SECRET_ARGUMENTS and isinstance(value, str):
        return [value]
    if isinstance(value, Mapping) and name in _MODEL_ARGUMENTS:
        try:
            model = _MODEL_ARGUMENTS[name].from_dict(value)
        except Exception:
            return [v for v in value.values() if isinstance(v, str)]  # unparsed: all strings
        found = getattr(model, "secret_values", None)
        return list(found()) if callable(found) else []
    return []


# --------------------------------------------------------------------------- call


@dataclass(frozen=True, slots=True)
class Call:
    """One method call on one plugin, as JSON values. ``repr`` hides the credentials."""

    entry_point: str
    method: str
    arguments: Mapping[str, JSONValue] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)
    identity: Mapping[str, Any] | None = field(default=None, repr=False)
    """Contract 1.3: ``IdentityContext.to_dict()`` of the calling user, for a plugin with
    ``requires_identity`` (absent otherwise, so older runners see the 1.2 envelope)."""

    def __post_init__(self) -> None:
        if not isinstance(self.entry_point, str) or not self.entry_point:
            raise WireError("entry_point: expected a non-empty string")
        if self.method not in METHODS:
            raise WireError(f"method: {self.method!r} is not a plugin method")
        for name, kind in (("arguments", Mapping), ("context", Mapping)):
            if not isinstance(getattr(self, name), kind):
                raise WireError(f"{name}: expected an object")
        expected = set(METHODS[self.method])
        if set(self.arguments) != expected:
            raise WireError(
                f"arguments: {self.method} takes {sorted(expected) or 'nothing'}, "
                f"got {sorted(self.arguments)}"
            )
        if not isinstance(self.credentials, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.credentials.items()
        ):
            raise WireError("credentials: expected an object of strings")
        object.__setattr__(self, "arguments", MappingProxyType(dict(self.arguments)))
        object.__setattr__(self, "context", MappingProxyType(dict(self.context)))
        object.__setattr__(self, "credentials", MappingProxyType(dict(self.credentials)))
        if self.identity is not None:
            if not isinstance(self.identity, Mapping):
                raise WireError("identity: expected an object or null")
            try:
                IdentityContext.from_dict(self.identity)
            except (PluginError, TypeError, ValueError) as exc:
                raise WireError(f"identity: {exc}") from None
            object.__setattr__(self, "identity", MappingProxyType(dict(self.identity)))

    def secret_values(self) -> list[str]:
        """Every secret the call carries: credentials, the user's token, secret arguments."""
        values = [value for value in self.credentials.values() if value]
        if self.identity is not None and isinstance(self.identity.get("access_token"), str):
            values.append(self.identity["access_token"])
        for name, value in self.arguments.items():
            values.extend(_argument_secrets(name, value))
        return values

    @classmethod
    def build(
        cls,
        entry_point: str,
        method: str,
        *args: Any,
        context: PluginContext,
        credentials: Mapping[str, str],
        identity: IdentityContext | None = None,
    ) -> Call:
        """Encode a Python call (positional arguments, as the handler method takes them).

        ``identity`` defaults to ``context.identity``."""
        names = METHODS.get(method)
        if names is None:
            raise WireError(f"method: {method!r} is not a plugin method")
        if len(args) != len(names):
            raise WireError(f"{method} takes {len(names)} argument(s), got {len(args)}")
        user = identity if identity is not None else context.identity
        return cls(
            entry_point=entry_point,
            method=method,
            arguments={
                name: _encode_argument(name, v) for name, v in zip(names, args, strict=True)
            },
            context=context.to_dict(),
            credentials=dict(credentials),
            identity=user.to_dict() if user is not None else None,
        )

    def decoded_arguments(self) -> list[Any]:
        """The positional Python arguments for the handler method."""
        return [_decode_argument(name, self.arguments[name]) for name in METHODS[self.method]]

    def to_dict(self) -> dict[str, Any]:
        data = {
            "wire": WIRE_VERSION,
            "entry_point": self.entry_point,
            "method": self.method,
            "arguments": dict(self.arguments),
            "context": dict(self.context),
            "credentials": dict(self.credentials),
        }
        if self.identity is not None:
            data["identity"] = dict(self.identity)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Call:
        if data.get("wire", WIRE_VERSION) != WIRE_VERSION:
            raise WireError(f"wire: version {data.get('wire')!r} is not {WIRE_VERSION}")
        unknown = sorted(set(data) - {"wire", *Call.__dataclass_fields__})
        if unknown:
            raise WireError(f"call: unknown field {unknown[0]!r}")
        return cls(
            entry_point=data.get("entry_point", ""),
            method=data.get("method", ""),
            arguments=data.get("arguments", {}),
            context=data.get("context", {}),
            credentials=data.get("credentials", {}),
            identity=data.get("identity"),
        )

    def to_json(self) -> str:
        return _dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str | bytes) -> Call:
        return cls.from_dict(_loads(text, "call"))


# --------------------------------------------------------------------------- reply


@dataclass(frozen=True, slots=True)
class Reply:
    """The outcome of a Call: a JSON ``result``, or an ``error`` (``PluginError.to_dict()``)."""

    result: JSONValue = None
    error: Mapping[str, Any] | None = None
    _text: list[str] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.error is not None:
            if not isinstance(self.error, Mapping) or not isinstance(self.error.get("code"), str):
                raise WireError("error: expected an object with a string code")
            if not isinstance(self.error.get("detail", ""), str):
                raise WireError("error.detail: expected a string")
            if self.result is not None:
                raise WireError("a reply carries a result or an error, not both")
            object.__setattr__(self, "error", MappingProxyType(dict(self.error)))

    @classmethod
    def failure(cls, error: PluginError) -> Reply:
        return cls(error=error.to_dict())

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self, method: str) -> Any:
        """The result as models; raises the carried error, or ``PluginFailed`` if malformed.

        Only SDK error codes are trusted: any other code, or fields that do not fit the
        error class, become ``PluginFailed`` (a reply comes from plugin code)."""
        if self.error is not None:
            code = self.error.get("code")
            if code not in SDK_ERROR_CODES:
                raise PluginFailed(f"the plugin's {method} reply carries an unknown error code")
            try:
                error = PluginError.from_dict(self.error)
                error.check_fields()
            except Exception:
                raise PluginFailed(
                    f"the plugin's {method} reply carries a malformed {code} error"
                ) from None
            raise error
        try:
            return decode_result(method, self.result)
        except Exception as exc:
            raise PluginFailed(f"the plugin's {method} reply does not fit the contract") from exc

    def to_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"wire": WIRE_VERSION, "error": dict(self.error)}
        return {"wire": WIRE_VERSION, "result": self.result}

    def to_json(self) -> str:
        """The JSON text (computed once; ``WireError`` if the result is not JSON)."""
        if not self._text:
            self._text.append(_dumps(self.to_dict()))
        return self._text[0]

    @classmethod
    def from_json(cls, text: str | bytes) -> Reply:
        data = _loads(text, "reply")
        if data.get("wire", WIRE_VERSION) != WIRE_VERSION:
            raise WireError(f"wire: version {data.get('wire')!r} is not {WIRE_VERSION}")
        unknown = sorted(set(data) - {"wire", "result", "error"})
        if unknown:
            raise WireError(f"reply: unknown field {unknown[0]!r}")
        if ("error" in data) == ("result" in data):
            raise WireError("reply: needs exactly one of result and error")
        return cls(result=data.get("result"), error=data.get("error"))


# --------------------------------------------------------------------------- execute


def execute(
    call: Call,
    handler_cls: type[PluginHandler],
    *,
    storage: KeyValueStore | None = None,
    log: LogSink | None = None,
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
    projects: ProjectMetadataReader | None = None,
) -> Reply:
    """Run ``call`` on a fresh ``handler_cls`` and return its Reply; never raises.

    ``storage`` is handed to the plugin only if its manifest declares ``permissions.storage``,
    ``projects`` only if it declares ``permissions.project_metadata``.
    The reply's JSON text is computed here (and cached), so a result that is not JSON or is
    over ``max_reply_bytes`` becomes a ``plugin_failed`` error, not a transport failure.
    """
    manifest = handler_cls.manifest
    slug = manifest.slug
    secrets: list[str] = call.secret_values()

    def failed(detail: str) -> Reply:
        return Reply.failure(PluginFailed(redact(detail, secrets)))

    try:
        identity = _call_identity(call, manifest.requires_identity)
        if manifest.requires_identity and identity is None:
            return Reply.failure(
                IdentityRequired(
                    f"plugin '{slug}' acts as the signed-in user: connect your account first",
                    plugin=manifest.requires_identity,
                )
            )
        sink = _RedactingSink(log, secrets) if log is not None else None
        logger = sink_logger(f"imbi.plugins.{slug}", sink) if sink is not None else None
        context = PluginContext.from_dict(
            call.context,
            logger=logger,
            storage=storage if manifest.permissions.storage else None,
            projects=projects if manifest.permissions.project_metadata else None,
            identity=identity,
        )
        secrets.extend(secret_values(manifest, context.options, call.credentials))
        arguments = call.decoded_arguments()
    except Exception as exc:  # a malformed call: refused, never raised
        detail = redact(f"call to plugin '{slug}' is invalid: {exc}", secrets)
        return Reply.failure(PluginFailed(detail))
    try:
        handler = handler_cls(context, Credentials(call.credentials))
        result = getattr(handler, call.method)(*arguments)
    except PluginError as exc:
        return _error_reply(exc, slug, secrets)
    except BaseException as exc:
        if log is not None:
            text = "".join(traceback.format_exception(exc))
            log.log(
                logging.ERROR, redact(f"plugin {slug} failed in {call.method}:\n{text}", secrets)
            )
        return failed(f"plugin '{slug}' failed ({type(exc).__name__})")
    problem = result_problem(call.method, result)
    if problem is not None:
        return failed(f"plugin '{slug}' returned an invalid {call.method} result: {problem}")
    try:
        reply = Reply(result=encode_result(call.method, result))
        size = len(reply.to_json())  # ASCII (ensure_ascii), so characters are bytes
    except BaseException as exc:  # a model subclass's to_dict is plugin code too
        reason = str(exc) if isinstance(exc, WireError) else type(exc).__name__
        return failed(f"plugin '{slug}' returned a {call.method} result that is {reason}")
    if size > max_reply_bytes:
        return failed(
            f"plugin '{slug}' returned a {call.method} reply of {size} bytes, "
            f"over the {max_reply_bytes}-byte limit"
        )
    return reply


class _RedactingSink:
    """The plugin's log lines with every secret of the call replaced by ``***`` before they
    reach the host's sink: the user's token and secret arguments (a code, a refresh token)
    are known only here, not to the host's own redaction of credentials."""

    def __init__(self, sink: LogSink, secrets: list[str]) -> None:
        self.sink = sink
        self.secrets = secrets  # the same list execute extends once the options are known

    def log(self, level: int, message: str) -> None:
        self.sink.log(level, redact(message, self.secrets))


def _call_identity(call: Call, required: str) -> IdentityContext | None:
    """The identity a handler may see: only with ``requires_identity``, and only for the
    identity plugin it names (``*``: any). Any other identity in the call is dropped."""
    if not required or call.identity is None:
        return None
    identity = IdentityContext.from_dict(call.identity)
    if required != "*" and identity.plugin != required:
        raise ValueError(f"identity is for plugin {identity.plugin!r}, not {required!r}")
    return identity


def _error_reply(exc: PluginError, slug: str, secrets: list[str]) -> Reply:
    """The Reply for an SDK error a plugin raised: only SDK codes cross, details are cut."""

    def failed(detail: str) -> Reply:
        return Reply.failure(PluginFailed(redact(detail, secrets)))

    try:
        code = exc.code
        if not isinstance(code, str) or code not in SDK_ERROR_CODES:
            shown = code if isinstance(code, str) else type(code).__name__
            return failed(
                f"plugin '{slug}' raised {type(exc).__name__} with code {shown[:60]!r}, "
                "which is not an SDK error"
            )
        error = exc.to_dict()
        detail = redact(str(error.get("detail", "")), secrets)
        if len(detail) > MAX_DETAIL_CHARS:
            detail = detail[: MAX_DETAIL_CHARS - 1] + "…"
        error["detail"] = detail
        error["code"] = code
        reply = Reply(error=error)
        size = len(reply.to_json())
    except BaseException:  # to_dict() or the fields are plugin code and data
        return failed(f"plugin '{slug}' raised {type(exc).__name__} with fields that are not JSON")
    if size > MAX_ERROR_BYTES:
        return failed(f"plugin '{slug}' raised {code} with {size} bytes of fields")
    return reply


assert set(METHODS) == set(RESULTS)
