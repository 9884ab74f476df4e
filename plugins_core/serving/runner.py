"""The runner: every plugin call goes through the SDK's JSON contract (serialize, call, validate).

``InProcessRunner.call(target, method, *args)`` encodes a ``Call`` as JSON text, hands it to
``transport`` (in process: decode it and run ``imbi_plugin_sdk.wire.execute``, the very
function an isolated runtime's child runs), decodes the ``Reply`` text and unwraps it into
result models or the plugin's error. A reply that is not valid JSON, has the wrong shape or is
over ``IMBI_PLUGIN_MAX_REPLY_BYTES`` becomes ``PluginFailed`` (HTTP 502), never a 500.

A target is anything with ``entry`` (the registry entry), ``context`` and ``credentials``:
``resolution.Resolved`` for a bound plugin, or a ``Target`` built by the wizard for a
plugin that has no row yet. Plugin log lines go to ``imbi.plugins.<slug>`` with every
credential and secret option value redacted.

Deadlines are cooperative here: the context carries ``timeout`` and plugins pass it to their
clients; a call that overruns is reported in the log. Hard deadlines, resource limits and
crash isolation belong to the isolated runner (``plugins_core.isolation.host``, ADR 0016):
``default_runner()`` is a ``ModeRunner`` that sends each call to one or the other by the
plugin's execution mode (``plugins_core.isolation.modes``); a target without a plugin row
(the wizard's) runs in-process only when its distribution is trusted.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings
from imbi_plugin_sdk import (
    Credentials,
    KeyValueStore,
    PluginContext,
    PluginFailed,
    PluginHandler,
    PluginManifest,
    redact,
    secret_values,
)
from imbi_plugin_sdk.results import RESULTS, check_result
from imbi_plugin_sdk.wire import DEFAULT_MAX_REPLY_BYTES, Call, Reply, WireError, execute

from imbi.core import metrics
from imbi.core.crypto import DecryptionError
from plugins_core import registry
from plugins_core.isolation.modes import ISOLATED, effective_mode
from plugins_core.serving.resolution import CredentialsUnreadable

__all__ = [
    "RESULTS",
    "CallTarget",
    "HostLogSink",
    "InProcessRunner",
    "ModeRunner",
    "PluginFailed",
    "Runner",
    "Target",
    "check_result",
    "default_runner",
    "redact",
]

logger = logging.getLogger(__name__)


class CallTarget(Protocol):
    """What a runner needs to call a plugin; no database row."""

    @property
    def entry(self) -> registry.Entry: ...

    @property
    def context(self) -> PluginContext: ...

    @property
    def credentials(self) -> Credentials: ...


@dataclass(frozen=True, slots=True)
class Target:
    """A ``CallTarget`` built by hand (the wizard's connection test)."""

    entry: registry.Entry
    context: PluginContext
    credentials: Credentials = field(repr=False)


class HostLogSink:
    """The host's ``LogSink``: a plugin's lines, redacted and cut to ``MAX_LOG_CHARS``, on
    ``imbi.plugins.<slug>``."""

    MAX_LOG_CHARS = 16 * 1024

    def __init__(self, slug: str, secrets: list[str]) -> None:
        self.slug = slug
        self.logger = logging.getLogger(f"imbi.plugins.{slug}")
        self.secrets = secrets

    def log(self, level: int, message: str) -> None:
        text = redact(message, self.secrets)
        if len(text) > self.MAX_LOG_CHARS:
            text = f"{text[: self.MAX_LOG_CHARS]}… ({len(text)} characters)"
        self.logger.log(level, "%s", text)


class GuardedStore:
    """The host storage as a plugin sees it, noting a row that no configured key opens.

    Such a row is an operator problem (a missing key), not a plugin bug: the runner answers
    ``CredentialsUnreadable`` (503) for the call whatever the plugin did with the error."""

    def __init__(self, store: KeyValueStore) -> None:
        self.store = store
        self.unreadable: DecryptionError | None = None

    def get(self, key: str) -> str | None:
        try:
            return self.store.get(key)
        except DecryptionError as exc:
            self.unreadable = exc
            raise

    def set(self, key: str, value: str) -> None:
        self.store.set(key, value)

    def delete(self, key: str) -> None:
        self.store.delete(key)

    def keys(self, prefix: str = "") -> list[str]:
        return self.store.keys(prefix)


class Runner(Protocol):
    def call(self, target: CallTarget, method: str, *args: Any) -> Any: ...


def _loaded(entry: registry.Entry) -> tuple[type[PluginHandler], PluginManifest]:
    if entry.handler is None or entry.manifest is None:
        raise PluginFailed(f"plugin '{entry.slug}' is not loaded")
    return entry.handler, entry.manifest


class InProcessRunner:
    """Runs the plugin in this thread, through the same JSON texts an isolated runtime sends."""

    _max_reply_bytes: int | None = None

    def __init__(self, max_reply_bytes: int | None = None) -> None:
        self._max_reply_bytes = max_reply_bytes

    @property
    def max_reply_bytes(self) -> int:
        if self._max_reply_bytes is not None:
            return self._max_reply_bytes
        return int(getattr(settings, "IMBI_PLUGIN_MAX_REPLY_BYTES", DEFAULT_MAX_REPLY_BYTES))

    def call(self, target: CallTarget, method: str, *args: Any) -> Any:
        handler_cls, manifest = _loaded(target.entry)
        context = target.context
        try:
            call = Call.build(
                target.entry.name,
                method,
                *args,
                context=context,
                credentials=target.credentials,
            )
            call_text = call.to_json()
        except WireError as exc:  # the host's own arguments: a host bug, still not a 500
            raise PluginFailed(f"call to plugin '{manifest.slug}' is invalid: {exc}") from None
        sink = HostLogSink(
            manifest.slug, secret_values(manifest, context.options, target.credentials)
        )
        started = time.monotonic()
        try:
            reply_text = self.transport(call_text, handler_cls, context=context, log=sink)
        finally:
            elapsed = time.monotonic() - started
            if elapsed > context.timeout:
                logger.warning(
                    "plugin %s.%s took %.1fs (timeout %.1fs)",
                    manifest.slug,
                    method,
                    elapsed,
                    context.timeout,
                )
        try:
            reply = Reply.from_json(reply_text)
        except WireError as exc:
            logger.error("plugin %s.%s sent a malformed reply: %s", manifest.slug, method, exc)
            raise PluginFailed(f"plugin '{manifest.slug}' sent a malformed reply") from None
        if reply.error is not None and reply.error.get("code") == PluginFailed.code:
            logger.error("plugin %s.%s: %s", manifest.slug, method, reply.error.get("detail"))
        return reply.unwrap(method)

    def transport(
        self,
        call_text: str,
        handler_cls: type[PluginHandler],
        *,
        context: PluginContext,
        log: HostLogSink,
    ) -> str:
        """Deliver the call and return the reply text; in process, ``wire.execute``."""
        storage = None if context.storage is None else GuardedStore(context.storage)
        reply = execute(
            Call.from_json(call_text),
            handler_cls,
            storage=storage,
            log=log,
            max_reply_bytes=self.max_reply_bytes,
            projects=context.projects,
        )
        if storage is not None and storage.unreadable is not None:
            # The log names the row and the key fingerprints; never a value.
            logger.error("plugin %s: %s", log.slug, storage.unreadable)
            raise CredentialsUnreadable(
                f"stored data of plugin '{log.slug}' cannot be decrypted with the configured "
                "keys; an operator must add the key that encrypted it to IMBI_ENCRYPTION_KEYS "
                "(see docs/operations.md, Keys and rotation)"
            )
        return reply.to_json()


class ModeRunner:
    """Dispatches each call by the target's effective execution mode."""

    def __init__(self) -> None:
        self.in_process = InProcessRunner()
        self._isolated: Runner | None = None

    def isolated(self) -> Runner:
        if self._isolated is None:
            from plugins_core.isolation.host import IsolatedRunner

            self._isolated = IsolatedRunner()
        return self._isolated

    def call(self, target: CallTarget, method: str, *args: Any) -> Any:
        """The call, counted once in ``imbi.core.metrics`` (plugin, organization, method,
        outcome code, latency) whichever runner serves it."""
        plugin = getattr(target, "plugin", None)
        chosen = plugin.execution_mode if plugin is not None else "auto"
        started = time.monotonic()
        failure: BaseException | None = None
        try:
            if effective_mode(chosen, target.entry) == ISOLATED:
                return self.isolated().call(target, method, *args)
            return self.in_process.call(target, method, *args)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            metrics.observe_call(
                str(plugin.slug) if plugin is not None else target.entry.slug,
                str(target.context.organization),
                method,
                time.monotonic() - started,
                failure,
            )


_default = ModeRunner()


def default_runner() -> Runner:
    return _default
