"""The runner seam: how the host invokes a handler, whichever way it runs.

Every call travels as the SDK's JSON call contract (``imbi_plugin_sdk.wire``): a ``Call`` in,
a ``Reply`` out, built and checked the same way in both execution modes:

* ``InProcessRunner`` runs ``wire.execute`` in the request's own thread (the trusted catalog).
  Deadlines are cooperative: the context carries ``timeout``; overruns are logged.
* ``IsolatedRunner`` (``plugins_core.isolation.host``) sends the Call to a sandboxed runner
  process that runs the same ``wire.execute``, with a hard deadline, resource limits and
  crash isolation.

``default_runner()`` returns ``ModeRunner``, which picks per call from the installed
plugin's execution mode (``plugins_core.isolation.modes``). In both modes a ``BaseException``,
a result of the wrong type, a value that is not JSON or a reply over the payload cap is
``plugin_failed`` (502); a plugin's traceback reaches the server log with every credential
and secret option value redacted, never the client.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from imbi_plugin_sdk import OptionType, PluginFailed
from imbi_plugin_sdk.redaction import redact
from imbi_plugin_sdk.results import check_result
from imbi_plugin_sdk.wire import Call, execute

from imbi.core.crypto import DecryptionError

from .isolation.modes import ISOLATED, effective_mode
from .resolution import CredentialsUnreadable, Resolved

logger = logging.getLogger(__name__)

__all__ = [
    "InProcessRunner",
    "ModeRunner",
    "PluginFailed",
    "Runner",
    "check_result",
    "default_runner",
    "redact",
    "secret_option_values",
]


def secret_option_values(resolved: Resolved) -> list[str]:
    """Values of the options the manifest types as secret (they may be quoted too)."""
    names = {f.name for f in resolved.manifest.options if f.type is OptionType.SECRET}
    return [str(v) for k, v in resolved.context.options.items() if k in names and v]


def max_payload() -> int:
    from django.conf import settings

    return int(settings.IMBI_PLUGIN_MAX_PAYLOAD)


class _WatchedStorage:
    """The plugin's host storage, remembering a ``DecryptionError`` the plugin may swallow."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.unreadable: DecryptionError | None = None

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def watched(*args: Any, **kwargs: Any) -> Any:
            try:
                return attr(*args, **kwargs)
            except DecryptionError as exc:
                self.unreadable = exc
                raise

        return watched


class Runner(Protocol):
    def call(self, resolved: Resolved, method: str, *args: Any) -> Any: ...


class HostLogSink:
    """A plugin's log lines, into the server log, redacted (``wire.LogSink``)."""

    def __init__(self, name: str, secrets: list[str]) -> None:
        self.logger = logging.getLogger(name)
        self.secrets = secrets

    def log(self, level: int, message: str) -> None:
        self.logger.log(level, "%s", redact(message, self.secrets))


class InProcessRunner:
    def call(self, resolved: Resolved, method: str, *args: Any) -> Any:
        handler_cls = resolved.entry.handler
        assert handler_cls is not None
        started = time.monotonic()
        secrets = [*resolved.credentials.values(), *secret_option_values(resolved)]
        try:
            storage = _WatchedStorage(resolved.context.storage)
            call = Call.build(
                resolved.entry.name,
                method,
                *args,
                context=resolved.context,
                credentials=dict(resolved.credentials),
            )
            reply = execute(
                call,
                handler_cls,
                storage=storage if resolved.context.storage is not None else None,
                log=HostLogSink(__name__, secrets),
                max_reply_bytes=max_payload(),
            )
            if storage.unreadable is not None and reply.error is not None:
                # A row (the plugin's host storage) that no configured key opens: an operator
                # problem, not a plugin bug. The log names the row and the key fingerprints.
                logger.error("plugin %s.%s: %s", resolved.manifest.slug, method, storage.unreadable)
                raise CredentialsUnreadable(
                    f"stored data of plugin '{resolved.plugin.slug}' cannot be decrypted with "
                    "the configured keys; an operator must add the key that encrypted it to "
                    "IMBI_ENCRYPTION_KEYS (see docs/operations.md, Keys and rotation)"
                )
            return reply.unwrap(method)
        finally:
            elapsed = time.monotonic() - started
            if elapsed > resolved.context.timeout:
                logger.warning(
                    "plugin %s.%s took %.1fs (timeout %.1fs)",
                    resolved.manifest.slug,
                    method,
                    elapsed,
                    resolved.context.timeout,
                )


class ModeRunner:
    """Dispatches each call by the installed plugin's effective execution mode."""

    def __init__(self) -> None:
        self.in_process = InProcessRunner()
        self._isolated: Runner | None = None

    def isolated(self) -> Runner:
        if self._isolated is None:
            from .isolation.host import IsolatedRunner

            self._isolated = IsolatedRunner()
        return self._isolated

    def call(self, resolved: Resolved, method: str, *args: Any) -> Any:
        mode = effective_mode(resolved.plugin.execution_mode, resolved.entry)
        runner = self.isolated() if mode == ISOLATED else self.in_process
        return runner.call(resolved, method, *args)


_default = ModeRunner()


def default_runner() -> Runner:
    return _default
